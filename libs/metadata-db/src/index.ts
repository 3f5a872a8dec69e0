export * from './entities/registry.entity';
export * from './migrations';
export * from './metadata-db';
export { createPgliteDriver } from './pglite.driver';
export { asBuffer, isForeignKeyViolation, isLockNotAvailable, isUniqueViolation, managerQueryer, poolQueryer, type Queryer, type SqlResult } from './queryer';
export * from './unit-of-work';
export * from './event.factory';
export type { LinkedBlob } from './stores/blob.store';
export type { HashCheckpoint, UploadSession } from './stores/upload.store';
export type { ManifestLookup, ManifestRecord, MissingReference, ReferrerRow, StoredManifest } from './stores/manifest.store';
export type { BlobStore } from './stores/blob.store';
export type { GarbageBlob, GarbageLink, GarbageManifest, GcQueue, GcQueueState, GcRunRecord, GcStore, GcUnsafeOptions, LinkKey, ManifestRules, ReferenceGraph } from './stores/gc.store';
export { ReconcileStore, type BlobRow, type UnknownBlobOutcome } from './stores/reconcile.store';
export type { ManifestStore } from './stores/manifest.store';
export type { NonceStore } from './stores/nonce.store';
export type { OutboxStore } from './stores/outbox.store';
export type { RepositoryStore } from './stores/repository.store';
export type { TagStore } from './stores/tag.store';
export type { UploadStore } from './stores/upload.store';
export type {
  AttemptRecord,
  ClaimedDelivery,
  DeliveryOutcome,
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpointState,
  WebhookEventInput,
  WebhookStore,
} from './stores/webhook.store';
export * from './pull-event.buffer';
export type { ClaimOptions, OutboxBacklog, OutboxEntry, OutboxEvent } from './stores/outbox.store';
export { CATALOG_PAGE_SQL } from './stores/repository.store';
export { TAG_PAGE_SQL } from './stores/tag.store';
