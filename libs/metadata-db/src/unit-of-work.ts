import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { tracingActive, untraced } from '@lading/contracts';
import type { EventSource } from './event.factory';
import { isRetryableConflict, managerQueryer, poolQueryer, type Queryer } from './queryer';
import { tracedQueryer, tracedStore, tracedTransaction } from './store.tracing';
import { BlobStore } from './stores/blob.store';
import { GcStore, type GcUnsafeOptions } from './stores/gc.store';
import { ManifestStore, type ManifestsChanged } from './stores/manifest.store';
import { NonceStore } from './stores/nonce.store';
import { OutboxStore } from './stores/outbox.store';
import { RepositoryStore } from './stores/repository.store';
import { TagStore } from './stores/tag.store';
import { UploadStore } from './stores/upload.store';
import { WebhookStore } from './stores/webhook.store';

/** Every store, bound to one Queryer (the pool, or one transaction). */
export interface Stores {
  readonly repositories: RepositoryStore;
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly manifests: ManifestStore;
  readonly tags: TagStore;
  readonly outbox: OutboxStore;
  readonly nonces: NonceStore;
  readonly webhooks: WebhookStore;
  readonly gc: GcStore;
}

/** The unit of work: the stores bound to one open transaction. Services pass it, never an EntityManager. */
export interface Tx extends Stores {
  /** Runs `fn` once the transaction has committed (not at all if it rolls back). */
  afterCommit(fn: () => void): void;
}

/** Options of {@link MetadataDb}. */
export interface MetadataDbOptions {
  /** Who emits events (the `source` of every envelope); a fresh instance id by default. */
  source?: Partial<EventSource>;
  /** Tests only: weakens garbage collection's locking, to show that the race harness catches it. */
  gcUnsafe?: GcUnsafeOptions;
}

const MAX_ATTEMPTS = 3;
const soleWriterSources = new WeakSet<DataSource>();

/** Marks `ds` as a database that only this process can open (embedded PGlite under its folder lock). */
export function markSoleWriter(ds: DataSource): void {
  soleWriterSources.add(ds);
}

/**
 * The metadata database as the apps see it: `read` for statements outside a transaction, and
 * `transaction` for a unit of work. Every statement lives in a store of this library; apps
 * hold no SQL.
 */
export class MetadataDb {
  /** The stores over the pool: each statement on its own (autocommit). */
  readonly read: Stores;
  /**
   * True when no other process can write this database — the embedded PGlite, whose data folder
   * is locked to this process. Derived from the driver, not configured: in-process caches of
   * database state are exact only then.
   */
  readonly soleWriter: boolean;
  readonly source: EventSource;
  private readonly listeners = new Set<ManifestsChanged>();
  private readonly outboxListeners = new Set<() => void>();
  private readonly gcUnsafe: GcUnsafeOptions;

  constructor(
    readonly dataSource: DataSource,
    options: MetadataDbOptions = {},
  ) {
    this.soleWriter = soleWriterSources.has(dataSource);
    this.gcUnsafe = options.gcUnsafe ?? {};
    this.source = { instanceID: options.source?.instanceID ?? randomUUID(), addr: options.source?.addr };
    this.read = this.stores(poolQueryer(dataSource), (repo) => this.notify(repo), () => this.notifyOutbox());
  }

  /**
   * Runs `work` in one transaction and commits it; rolls back if it throws. Retried (at most three
   * times in all) on a deadlock or serialization failure, so `work` must be safe to run again and to
   * roll back: as a rule it touches only the database. The one exception is GC's blob batch: it
   * removes the deleted blobs' bytes from storage inside its transaction, within
   * `gc.blobs.storagetimeout`, while the blob rows stay locked, so that a push of the same digest
   * (whose commit pin waits for those rows) never places bytes that this removal then takes. That
   * is safe to roll back or repeat: the removal is idempotent (a missing object counts as removed),
   * and rows left behind without bytes are still garbage (nothing links them; a push of that digest
   * writes its bytes anew), which the next review removes.
   */
  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return untraced() ? this.runTransaction(work) : tracedTransaction(() => this.runTransaction(work));
  }

  private async runTransaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const after: (() => void)[] = [];
      try {
        const result = await this.dataSource.transaction(async (m) => {
          const q: Queryer = managerQueryer(m);
          const changed: ManifestsChanged = (repo) => {
            // Before (reads racing the write are not cached) and after the commit (nor are reads
            // that started between the first invalidation and the commit).
            this.notify(repo);
            after.push(() => this.notify(repo));
          };
          let appended = false;
          const outboxAppended = () => {
            if (!appended) after.push(() => this.notifyOutbox());
            appended = true;
          };
          const tx: Tx = { ...this.stores(q, changed, outboxAppended), afterCommit: (fn) => after.push(fn) };
          return work(tx);
        });
        for (const fn of after) fn();
        return result;
      } catch (e) {
        if (attempt >= MAX_ATTEMPTS || !isRetryableConflict(e)) throw e;
      }
    }
  }

  /** Calls `listener` with the repository of every manifest or tag write, through any store. */
  onManifestsChanged(listener: ManifestsChanged): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `listener` after each commit that appended to the outbox through this object (this
   * process's writes only: a relay in the same process starts at once instead of at its next poll).
   */
  onOutboxAppended(listener: () => void): () => void {
    this.outboxListeners.add(listener);
    return () => this.outboxListeners.delete(listener);
  }

  /** The names of the applied migrations, oldest first. */
  async appliedMigrations(): Promise<string[]> {
    const { rows } = await poolQueryer(this.dataSource).query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY id');
    return rows.map((r) => r.name);
  }

  /** Whether the database answers a trivial query (readiness). */
  async ping(): Promise<void> {
    await poolQueryer(this.dataSource).query('SELECT 1');
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }

  private notify(repository: string): void {
    for (const l of this.listeners) l(repository);
  }

  private notifyOutbox(): void {
    for (const l of this.outboxListeners) l();
  }

  /**
   * The stores over `q`. When tracing, every call of one is a span, and so is every statement on a
   * driver handed in as an object (PGlite's, in process: no instrumentation sees its queries).
   */
  private stores(raw: Queryer, changed: ManifestsChanged, outboxAppended: () => void): Stores {
    const traced = tracingActive();
    const q = traced && 'driver' in this.dataSource.options && this.dataSource.options.driver ? tracedQueryer(raw) : raw;
    const stores = this.bareStores(q, changed, outboxAppended);
    if (!traced) return stores;
    const out: Record<string, object> = {};
    for (const [aggregate, store] of Object.entries(stores)) out[aggregate] = tracedStore(aggregate, store);
    return out as unknown as Stores;
  }

  private bareStores(q: Queryer, changed: ManifestsChanged, outboxAppended: () => void): Stores {
    const repositories = new RepositoryStore(q);
    const gc = new GcStore(q, changed, this.gcUnsafe);
    const blobs = new BlobStore(q, repositories, gc);
    return {
      repositories,
      blobs,
      uploads: new UploadStore(q),
      manifests: new ManifestStore(q, repositories, blobs, gc, changed),
      tags: new TagStore(q, changed),
      outbox: new OutboxStore(q, this.source, outboxAppended),
      nonces: new NonceStore(q),
      webhooks: new WebhookStore(q),
      gc,
    };
  }
}
