import { InitialSchema1764270000000 } from './1764270000000-initial-schema';
import { RequestScopeAndUploadLeases1764800000000 } from './1764800000000-request-scope-and-upload-leases';
import { RequestNonces1764930000000 } from './1764930000000-request-nonces';
import { UploadParts1765000000000 } from './1765000000000-upload-parts';
import { UploadHashState1765100000000 } from './1765100000000-upload-hash-state';
import { OutboxRelay1765200000000 } from './1765200000000-outbox-relay';
import { WebhookDeliveries1765300000000 } from './1765300000000-webhook-deliveries';
import { GcReviewQueues1765400000000 } from './1765400000000-gc-review-queues';
import { GcLockDueReviews1765460000000 } from './1765460000000-gc-lock-due-reviews';
import { OutboxUnsentQueue1765500000000 } from './1765500000000-outbox-unsent-queue';
import { UploadTrace1765700000000 } from './1765700000000-upload-trace';
import { WebhookDeliveryTrace1765800000000 } from './1765800000000-webhook-delivery-trace';

/** Every migration, oldest first. Only migrations change the schema. */
export const METADATA_MIGRATIONS = [
  InitialSchema1764270000000,
  RequestScopeAndUploadLeases1764800000000,
  RequestNonces1764930000000,
  UploadParts1765000000000,
  UploadHashState1765100000000,
  OutboxRelay1765200000000,
  WebhookDeliveries1765300000000,
  GcReviewQueues1765400000000,
  GcLockDueReviews1765460000000,
  OutboxUnsentQueue1765500000000,
  UploadTrace1765700000000,
  WebhookDeliveryTrace1765800000000,
];
