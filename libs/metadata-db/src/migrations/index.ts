import { InitialSchema1764270000000 } from './1764270000000-initial-schema';
import { RequestScopeAndUploadLeases1764800000000 } from './1764800000000-request-scope-and-upload-leases';
import { RequestNonces1764930000000 } from './1764930000000-request-nonces';
import { UploadParts1765000000000 } from './1765000000000-upload-parts';
import { UploadHashState1765100000000 } from './1765100000000-upload-hash-state';
import { OutboxRelay1765200000000 } from './1765200000000-outbox-relay';
import { WebhookDeliveries1765300000000 } from './1765300000000-webhook-deliveries';
import { GcReviewQueues1765400000000 } from './1765400000000-gc-review-queues';
import { UploadTrace1765500000000 } from './1765500000000-upload-trace';
import { WebhookDeliveryTrace1765600000000 } from './1765600000000-webhook-delivery-trace';

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
  UploadTrace1765500000000,
  WebhookDeliveryTrace1765600000000,
];
