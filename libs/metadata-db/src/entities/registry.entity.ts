import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/*
 * The metadata schema. Blob bytes live in storage; everything else lives here, so that one
 * transaction can change blobs, manifests and the event outbox together. The schema itself is
 * created only by migrations (see ../migrations). The stores query with SQL, not through these
 * entities; the entities are the typed description of the schema, and a spec
 * (entities.spec.ts) checks every table and column of them against the migrated database, so
 * they cannot drift from it.
 */

/** A repository path (tenant prefix included once tenancy exists). */
@Entity('repositories')
export class RepositoryEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: number;
  @Column({ type: 'text', unique: true, collation: 'C' }) name!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  /** A manifest was pushed to it once: its tag listing exists from then on, even when empty. */
  @Column({ name: 'manifest_pushed', type: 'boolean' }) manifestPushed!: boolean;
}

/** A blob stored once in the registry, content-addressed. */
@Entity('blobs')
export class BlobEntity {
  @PrimaryColumn({ type: 'text' }) digest!: string;
  @Column({ type: 'bigint' }) size!: number;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** Makes a blob visible in a repository. */
@Entity('repository_blobs')
@Index(['digest'])
export class RepositoryBlobEntity {
  @PrimaryColumn({ name: 'repository_id', type: 'bigint' }) repositoryId!: number;
  @PrimaryColumn({ type: 'text' }) digest!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  /** The last push or mount of the blob into the repository: GC's review delay counts from it. */
  @Column({ name: 'linked_at', type: 'timestamptz' }) linkedAt!: Date;
}

/** A manifest (image manifest or index) with its exact bytes. */
@Entity('manifests')
@Index(['repositoryId', 'digest'], { unique: true })
export class ManifestEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: number;
  @Column({ name: 'repository_id', type: 'bigint' }) repositoryId!: number;
  @Column({ type: 'text' }) digest!: string;
  @Column({ name: 'media_type', type: 'text' }) mediaType!: string;
  @Column({ type: 'bytea' }) payload!: Buffer;
  @Column({ type: 'integer' }) size!: number;
  @Column({ name: 'config_digest', type: 'text', nullable: true }) configDigest!: string | null;
  @Column({ name: 'subject_digest', type: 'text', nullable: true }) subjectDigest!: string | null;
  @Column({ name: 'artifact_type', type: 'text', nullable: true }) artifactType!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** What a manifest references: blobs (config, layers) and, for an index, child manifests. */
@Entity('manifest_references')
@Index(['digest'])
export class ManifestReferenceEntity {
  @PrimaryColumn({ name: 'manifest_id', type: 'bigint' }) manifestId!: number;
  @PrimaryColumn({ type: 'text' }) kind!: 'blob' | 'manifest';
  @PrimaryColumn({ type: 'text' }) digest!: string;
}

/** A tag pointing at a manifest of the same repository. */
@Entity('tags')
export class TagEntity {
  @PrimaryColumn({ name: 'repository_id', type: 'bigint' }) repositoryId!: number;
  @PrimaryColumn({ type: 'text', collation: 'C' }) name!: string;
  @Column({ name: 'manifest_id', type: 'bigint' }) manifestId!: number;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** One stored part of an upload, in the storage port's `UploadPart` shape. */
export interface UploadPartRecord {
  name: string;
  size: number;
  etag?: string;
}

/** An upload in progress; its bytes live under the storage's uploads prefix, as the parts listed. */
@Entity('upload_sessions')
export class UploadSessionEntity {
  @PrimaryColumn({ type: 'uuid' }) id!: string;
  /** The repository by name: opening a session does not create the repository. */
  @Column({ type: 'text', collation: 'C' }) repository!: string;
  @Column({ type: 'bigint' }) size!: number;
  /** The writer holding the session's lease, and until when (by the database's clock). */
  @Column({ name: 'lease_owner', type: 'uuid', nullable: true }) leaseOwner!: string | null;
  @Column({ name: 'lease_until', type: 'timestamptz', nullable: true }) leaseUntil!: Date | null;
  /** The digest a commit verified, recorded before the bytes move (the only one recovery accepts). */
  @Column({ name: 'committing_digest', type: 'text', nullable: true }) committingDigest!: string | null;
  /** The upload's stored parts, in order, as the storage driver reported them. */
  @Column({ type: 'jsonb', default: () => "'[]'::jsonb" }) parts!: UploadPartRecord[];
  /** A saved hash state of the first `hashOffset` bytes, and the implementation that can load it. */
  @Column({ name: 'hash_impl', type: 'text', nullable: true }) hashImpl!: string | null;
  @Column({ name: 'hash_offset', type: 'bigint', nullable: true }) hashOffset!: number | null;
  /** The W3C traceparent of the request that opened the session, for the closing request's span link. */
  @Column({ type: 'text', nullable: true }) traceparent!: string | null;
  @Column({ name: 'hash_state', type: 'bytea', nullable: true }) hashState!: Buffer | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** The transactional outbox: an event row written with the change it describes. */
@Entity('event_outbox')
export class OutboxEventEntity {
  @PrimaryColumn({ type: 'uuid' }) id!: string;
  @Column({ type: 'bigint', generated: 'increment' }) seq!: number;
  @Column({ type: 'text' }) repository!: string;
  @Column({ type: 'text' }) action!: string;
  /** The envelope as written (`json`: the text, in the reference registry's field order). */
  @Column({ type: 'json' }) payload!: unknown;
  @Column({ name: 'envelope_version', type: 'integer' }) envelopeVersion!: number;
  /** The W3C traceparent of the request that made the change, to continue its trace. */
  @Column({ type: 'text', nullable: true }) traceparent!: string | null;
  @Column({ type: 'text', nullable: true }) tenant!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** An outbox event not yet relayed; marking it sent deletes this row. */
@Entity('event_outbox_unsent')
export class OutboxUnsentEntity {
  @PrimaryColumn({ type: 'bigint' }) seq!: number;
  @Column({ type: 'text' }) repository!: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** A relay's claim on one repository's unsent events: one relay at a time sends them, oldest first. */
@Entity('outbox_leases')
export class OutboxLeaseEntity {
  @PrimaryColumn({ type: 'text' }) repository!: string;
  @Column({ type: 'uuid' }) owner!: string;
  @Column({ type: 'timestamptz' }) until!: Date;
}

/** A claimed one-time nonce of a signed internal request, kept until its signature could no longer be fresh. */
@Entity('request_nonces')
@Index(['expiresAt'])
export class RequestNonceEntity {
  @PrimaryColumn({ type: 'text' }) nonce!: string;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt!: Date;
}

/** What an operator or the failure threshold set for a webhook endpoint. */
@Entity('webhook_endpoints')
export class WebhookEndpointEntity {
  @PrimaryColumn({ type: 'text', collation: 'C' }) name!: string;
  @Column({ type: 'boolean', default: false }) paused!: boolean;
  @Column({ type: 'integer', default: 0 }) failures!: number;
  @Column({ name: 'backoff_until', type: 'timestamptz', nullable: true }) backoffUntil!: Date | null;
}

/** One event for one webhook endpoint: the endpoint's cursor, with its delivery state. */
@Entity('webhook_deliveries')
export class WebhookDeliveryEntity {
  @PrimaryColumn({ type: 'text', collation: 'C' }) endpoint!: string;
  @PrimaryColumn({ name: 'event_id', type: 'uuid' }) eventId!: string;
  @Column({ type: 'bigint', generated: 'identity' }) seq!: number;
  @Column({ type: 'text' }) repository!: string;
  @Column({ type: 'text' }) action!: string;
  @Column({ type: 'jsonb' }) payload!: unknown;
  @Column({ type: 'text', default: 'pending' }) status!: 'pending' | 'delivered' | 'dead';
  @Column({ type: 'integer', default: 0 }) attempts!: number;
  @Column({ name: 'due_at', type: 'timestamptz' }) dueAt!: Date;
  @Column({ name: 'claim_owner', type: 'uuid', nullable: true }) claimOwner!: string | null;
  @Column({ name: 'claim_until', type: 'timestamptz', nullable: true }) claimUntil!: Date | null;
  @Column({ name: 'last_status', type: 'integer', nullable: true }) lastStatus!: number | null;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError!: string | null;
  @Column({ name: 'last_latency_ms', type: 'integer', nullable: true }) lastLatencyMs!: number | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  /** The W3C traceparent of the event's trace, continued by the POST. */
  @Column({ type: 'text', nullable: true }) traceparent!: string | null;
}

/** The delivery log: one row per POST to an endpoint. */
@Entity('webhook_attempts')
export class WebhookAttemptEntity {
  @PrimaryColumn({ type: 'bigint', generated: 'identity' }) id!: number;
  @Column({ type: 'text', collation: 'C' }) endpoint!: string;
  @Column({ name: 'event_ids', type: 'uuid', array: true }) eventIds!: string[];
  @Column({ name: 'attempted_at', type: 'timestamptz' }) attemptedAt!: Date;
  @Column({ name: 'status_code', type: 'integer', nullable: true }) statusCode!: number | null;
  @Column({ name: 'latency_ms', type: 'integer' }) latencyMs!: number;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  @Column({ name: 'response_snippet', type: 'text', default: '' }) responseSnippet!: string;
}

/** The review delay GC's queue triggers use (one row; `gc.reviewafter`, written by the GC workers). */
@Entity('gc_settings')
export class GcSettingsEntity {
  @PrimaryColumn({ type: 'boolean' }) id!: boolean;
  @Column({ name: 'review_after', type: 'interval' }) reviewAfter!: string;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** A blob waiting for a GC review (queued when a link to it was removed). */
@Entity('gc_blob_review_queue')
export class GcBlobReviewEntity {
  @PrimaryColumn({ type: 'text' }) digest!: string;
  @Column({ name: 'review_after', type: 'timestamptz' }) reviewAfter!: Date;
  @Column({ name: 'review_count', type: 'integer', default: 0 }) reviewCount!: number;
  @Column({ type: 'text' }) event!: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** A repository's link to a blob waiting for a GC review (pushed, mounted, or its manifest deleted). */
@Entity('gc_link_review_queue')
export class GcLinkReviewEntity {
  @PrimaryColumn({ name: 'repository_id', type: 'bigint' }) repositoryId!: number;
  @PrimaryColumn({ type: 'text' }) digest!: string;
  @Column({ name: 'review_after', type: 'timestamptz' }) reviewAfter!: Date;
  @Column({ name: 'review_count', type: 'integer', default: 0 }) reviewCount!: number;
  @Column({ type: 'text' }) event!: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** A manifest waiting for a GC review (pushed, untagged, its index or subject deleted). */
@Entity('gc_manifest_review_queue')
export class GcManifestReviewEntity {
  @PrimaryColumn({ name: 'manifest_id', type: 'bigint' }) manifestId!: number;
  @Column({ name: 'repository_id', type: 'bigint' }) repositoryId!: number;
  @Column({ name: 'review_after', type: 'timestamptz' }) reviewAfter!: Date;
  @Column({ name: 'review_count', type: 'integer', default: 0 }) reviewCount!: number;
  @Column({ type: 'text' }) event!: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** A single-request upload moving a blob's bytes into place: GC leaves that blob alone. */
@Entity('blob_commit_pins')
export class BlobCommitPinEntity {
  @PrimaryColumn({ type: 'uuid' }) id!: string;
  @Column({ type: 'text' }) digest!: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/** The last pass of a GC worker over a queue that reviewed anything. */
@Entity('gc_runs')
export class GcRunEntity {
  @PrimaryColumn({ type: 'text' }) worker!: string;
  @PrimaryColumn({ type: 'text' }) kind!: string;
  @Column({ name: 'finished_at', type: 'timestamptz' }) finishedAt!: Date;
  @Column({ type: 'bigint' }) reviewed!: number;
  @Column({ type: 'bigint' }) deleted!: number;
  @Column({ type: 'bigint' }) bytes!: number;
}

/** Every entity of the metadata database. */
export const METADATA_ENTITIES = [
  RepositoryEntity,
  BlobEntity,
  RepositoryBlobEntity,
  ManifestEntity,
  ManifestReferenceEntity,
  TagEntity,
  UploadSessionEntity,
  WebhookEndpointEntity,
  WebhookDeliveryEntity,
  WebhookAttemptEntity,
  OutboxEventEntity,
  OutboxUnsentEntity,
  OutboxLeaseEntity,
  RequestNonceEntity,
  GcSettingsEntity,
  GcBlobReviewEntity,
  GcLinkReviewEntity,
  GcManifestReviewEntity,
  BlobCommitPinEntity,
  GcRunEntity,
];
