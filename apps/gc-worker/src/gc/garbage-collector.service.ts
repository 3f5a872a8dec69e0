import { randomUUID } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { systemScope, type RequestScope } from '@lading/contracts';
import { buildRegistryEvent, deleteEvent, isLockNotAvailable, MetadataDb, NO_REPOSITORY, type GcQueue, type LinkKey, type OutboxEntry, type Tx } from '@lading/metadata-db';
import { BLOB_STORAGE, LADING_CONFIG, oncePerScrape, SampledGauge, type LadingConfig } from '@lading/nest-common';
import type { BlobStorage } from '@lading/storage';
import { Counter } from 'prom-client';

/** Review rows one transaction takes. S3 removes up to 1,000 keys a request. */
export const GC_BATCH = 500;
/** A review whose target a push holds is due again after this, doubling (not counted as an error). */
const BUSY_BACKOFF_MS = 1_000;
/** A review that failed (storage, database) is due again after this, doubling up to `gc.maxbackoff`. */
const ERROR_BACKOFF_MS = 5 * 60_000;
/** The media type GC deletes of blobs are counted under (blobs carry none). */
const BLOB_MEDIA_TYPE = 'application/octet-stream';
/** The actor GC's delete events name. */
export const GC_ACTOR = 'lading-gc';

/** What one review batch did. */
export interface GcBatchResult {
  queue: GcQueue;
  /** Review rows claimed. */
  reviewed: number;
  /** Items deleted (links, blobs, manifests). */
  deleted: number;
  /** Bytes reclaimed from storage (blobs) or from the database (manifest payloads). */
  bytes: number;
  /** Reviews put off because a push held their target. */
  postponed: number;
  /** Deleted items by media type: rows and bytes. */
  byMediaType: Record<string, { rows: number; bytes: number }>;
  /** Rows of the queue that were due when the batch began (set for a run's progress only). */
  due?: number;
}

/** What this process's collector did since it started: counters for the admin API. */
export interface GcCounters {
  worker: string;
  runs: number;
  reviewed: number;
  deleted: number;
  bytes: number;
  postponed: number;
  errors: number;
  lastError?: string;
  byQueue: Record<GcQueue, { reviewed: number; deleted: number; bytes: number }>;
  byMediaType: Record<string, { rows: number; bytes: number }>;
}

const queueLabel = ['queue'] as const;
const queueCounter = (name: string, help: string) => new Counter({ name, help, labelNames: queueLabel });
const queueGauge = (name: string, help: string) => new SampledGauge({ name, help, labelNames: queueLabel });
const gcMetrics = {
  reviewed: queueCounter('lading_gc_reviewed_total', 'Review-queue items this process judged, by queue.'),
  deleted: queueCounter('lading_gc_deleted_total', 'Blobs, manifests and links garbage collection deleted, by queue.'),
  bytes: queueCounter(
    'lading_gc_reclaimed_bytes_total',
    'Bytes reclaimed: blob bytes from storage, manifest payloads from the database, by queue.',
  ),
  postponed: queueCounter(
    'lading_gc_postponed_total',
    'Reviews put off (a push held the target, or the batch failed), by queue.',
  ),
  errors: queueCounter('lading_gc_errors_total', 'Review batches that failed and were rolled back, by queue.'),
  runs: queueCounter('lading_gc_runs_total', 'Passes that reviewed at least one item, by queue.'),
};
const gcQueues = {
  depth: queueGauge('lading_gc_queue_depth', 'Items in each review queue (due or not), in the database.'),
  due: queueGauge('lading_gc_queue_due', 'Items of each review queue whose review delay has passed.'),
  oldest: queueGauge(
    'lading_gc_queue_oldest_due_seconds',
    'How long the oldest due item of each review queue has been due (0 when none is): the GC backlog.',
  ),
};

/** Told of each batch, with the rows that were due when it began (`lading gc run` draws its progress from it). */
export type GcProgress = (batch: GcBatchResult) => void;

/** Rolls a dry run's transaction back after it found what it would delete. */
class DryRunRollback extends Error {
  constructor(readonly result: GcBatchResult) {
    super('dry run');
  }
}

/**
 * Online garbage collection: works the review queues that database triggers fill (migration
 * 1765400000000), as any number of replicas may, each batch in one transaction:
 * claim due rows (`FOR UPDATE SKIP LOCKED`) → lock their targets (`SKIP LOCKED`: one a push holds
 * is postponed) → judge them again with the locks held (a change committed meanwhile is seen) →
 * delete the rows (cascades queue what they kept alive) → for blobs, remove the bytes from
 * storage within `gc.blobs.storagetimeout`, before the commit, while the rows stay locked → write
 * a `delete` event for each deletion (a manifest's and a link's in their repository, a blob's
 * bytes in {@link NO_REPOSITORY}) → commit: an event exists exactly when its deletion does. A failure rolls everything back and postpones the batch
 * with exponential backoff (up to `gc.maxbackoff`); a missing object counts as removed.
 *
 * Three loops (links, manifests, blobs) each poll at their `interval` when idle and go on at
 * once while they find full batches.
 */
@Injectable()
export class GarbageCollector implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('GarbageCollector');
  readonly worker = randomUUID();
  private readonly counters: GcCounters = {
    worker: this.worker,
    runs: 0,
    reviewed: 0,
    deleted: 0,
    bytes: 0,
    postponed: 0,
    errors: 0,
    byQueue: { links: emptyQueueCounter(), blobs: emptyQueueCounter(), manifests: emptyQueueCounter() },
    byMediaType: {},
  };
  private readonly loops: Promise<void>[] = [];
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private readonly scope: RequestScope;
  private readonly removeGauges: Array<() => void> = [];

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(BLOB_STORAGE) private readonly storage: BlobStorage,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {
    this.scope = Object.freeze({
      ...systemScope('manifest.delete', null, `gc-${this.worker}`),
      principal: { kind: 'user' as const, name: GC_ACTOR },
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.db.read.gc.setReviewAfter(this.config.gc.reviewafter);
    // One status query serves the three gauges of a scrape (they are read one after another).
    const queues = oncePerScrape(() => this.db.read.gc.status());
    this.removeGauges.push(
      gcQueues.depth.add(async (set) => (await queues()).queues.forEach((q) => set({ queue: q.queue }, q.depth))),
      gcQueues.due.add(async (set) => (await queues()).queues.forEach((q) => set({ queue: q.queue }, q.due))),
      gcQueues.oldest.add(async (set) =>
        (await queues()).queues.forEach((q) => set({ queue: q.queue }, q.oldestDueMs / 1000)),
      ),
    );
    if (this.config.gc.disabled) {
      this.logger.log('garbage collection is disabled (gc.disabled)');
      return;
    }
    this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const remove of this.removeGauges.splice(0)) remove();
    await this.stop();
  }

  /** Starts the loops the configuration enables. */
  start(): void {
    if (this.loops.length > 0) return;
    const { blobs, manifests } = this.config.gc;
    if (!manifests.disabled) {
      this.loops.push(this.loop('manifests', manifests.interval));
      this.loops.push(this.loop('links', manifests.interval));
    }
    if (!blobs.disabled) this.loops.push(this.loop('blobs', blobs.interval));
    this.logger.log(`collecting garbage (worker ${this.worker}; review delay ${this.config.gc.reviewafter} ms)`);
  }

  /** Stops after the batches in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops.splice(0));
  }

  /** The counters since start. */
  stats(): GcCounters {
    return structuredClone(this.counters);
  }

  /**
   * Works every queue until none has a due row (manifests first: what they free is reviewed in
   * the same run when the review delay allows). A dry run reports one batch of each queue and
   * changes nothing.
   */
  async runOnce(options: { dryRun?: boolean; onProgress?: GcProgress } = {}): Promise<GcBatchResult[]> {
    const results: GcBatchResult[] = [];
    for (let busy = true; busy; ) {
      busy = false;
      for (const queue of ['manifests', 'links', 'blobs'] as const) {
        for (;;) {
          const due = options.onProgress ? await this.db.read.gc.dueCount(queue) : undefined;
          const r = await this.reviewBatch(queue, options.dryRun);
          if (r.reviewed === 0) break;
          results.push(r);
          options.onProgress?.({ ...r, due });
          if (options.dryRun) break;
          if (r.reviewed > r.postponed) busy = true;
          else break; // everything due is held by pushes: leave it to its postponed time
        }
      }
      if (options.dryRun) break;
    }
    return results;
  }

  /** Reviews one batch of `queue`: claim, lock, judge, delete, commit. @throws nothing: a failure postpones the batch and is counted. */
  async reviewBatch(queue: GcQueue, dryRun = false): Promise<GcBatchResult> {
    const result = emptyResult(queue);
    let claimed: (string | number | LinkKey)[] = [];
    try {
      const r = await this.db.transaction(async (tx) => {
        const out = emptyResult(queue);
        // In a lock cycle with a push, the batch gives up first (`gc.lockwait`, below the deadlock
        // detector's 1 s): the push goes on, the batch is postponed as busy.
        await tx.gc.boundLockWaits(this.config.gc.lockwait);
        // Known as soon as claimed: a batch that fails midway postpones what it had claimed.
        await this.review(tx, queue, out, (keys) => (claimed = keys));
        if (dryRun) throw new DryRunRollback(out);
        return out;
      });
      Object.assign(result, r);
    } catch (e) {
      if (e instanceof DryRunRollback) return e.result;
      if (isLockNotAvailable(e) && claimed.length > 0) {
        // A push held a row this batch's deletes needed: busy, not failed (nothing was done).
        await this.db.read.gc.postpone(queue, claimed, BUSY_BACKOFF_MS, this.config.gc.maxbackoff).catch(() => undefined);
        const busy = { ...emptyResult(queue), reviewed: claimed.length, postponed: claimed.length };
        this.count(busy);
        return busy;
      }
      this.counters.errors++;
      gcMetrics.errors.inc({ queue });
      gcMetrics.postponed.inc({ queue }, claimed.length);
      this.counters.lastError = (e as Error).message;
      this.logger.warn(`a ${queue} review batch failed, postponed: ${(e as Error).message}`);
      await this.db.read.gc
        .postpone(queue, claimed, ERROR_BACKOFF_MS, this.config.gc.maxbackoff)
        .catch(() => undefined);
      return { ...emptyResult(queue), reviewed: claimed.length, postponed: claimed.length };
    }
    this.count(result);
    return result;
  }

  private async review(tx: Tx, queue: GcQueue, out: GcBatchResult, claimed: (keys: (string | number | LinkKey)[]) => void): Promise<void> {
    switch (queue) {
      case 'links':
        return this.reviewLinks(tx, out, claimed);
      case 'blobs':
        return this.reviewBlobs(tx, out, claimed);
      case 'manifests':
        return this.reviewManifests(tx, out, claimed);
    }
  }

  private async reviewLinks(tx: Tx, out: GcBatchResult, claim: (keys: LinkKey[]) => void): Promise<void> {
    const claimed = await tx.gc.claimLinks(GC_BATCH);
    claim(claimed);
    out.reviewed = claimed.length;
    if (claimed.length === 0) return;
    const locked = await tx.gc.lockLinks(claimed);
    const busy = claimed.filter((k) => !locked.some((l) => sameLink(l, k)));
    const garbage = await tx.gc.garbageLinks(locked);
    const live = locked.filter((k) => !garbage.some((g) => sameLink(g, k)));
    await tx.gc.deleteLinks(garbage);
    await tx.gc.dropReviews('links', live);
    await tx.gc.postpone('links', busy, BUSY_BACKOFF_MS, this.config.gc.maxbackoff);
    await this.appendEvents(
      tx,
      garbage.map((g) => ({ repository: g.repository, digest: g.digest })),
    );
    out.deleted = garbage.length;
    out.postponed = busy.length;
    // A link holds no bytes of its own: the blob is reviewed next, in its own queue.
    for (const _ of garbage) addMediaType(out, 'link', 0);
  }

  private async reviewBlobs(tx: Tx, out: GcBatchResult, claim: (keys: string[]) => void): Promise<void> {
    const claimed = await tx.gc.claimBlobs(GC_BATCH);
    claim(claimed);
    out.reviewed = claimed.length;
    if (claimed.length === 0) return;
    const locked = new Set(await tx.gc.lockBlobs(claimed));
    const busy = claimed.filter((d) => !locked.has(d));
    const garbage = await tx.gc.garbageBlobs([...locked]);
    const dead = new Set(garbage.map((g) => g.digest));
    await tx.gc.deleteBlobRows([...dead]);
    await tx.gc.dropReviews(
      'blobs',
      [...locked].filter((d) => !dead.has(d)),
    );
    await tx.gc.postpone('blobs', busy, BUSY_BACKOFF_MS, this.config.gc.maxbackoff);
    // The bytes go before the commit, with the rows still locked: a push of the same digest
    // (its commit pin waits for these rows) places its bytes only after these are gone. If the
    // commit then fails (or the transaction is retried after a deadlock), the rows stay behind
    // without bytes: still garbage (nothing links them; a push of that digest writes its bytes
    // anew, as none are there), judged and removed again by the next review; removal is idempotent.
    await this.removeFromStorage([...dead]);
    // Last, so the outbox's order lock of the registry-wide events (one key for every worker) is
    // held only for the commit, not through the storage removal.
    await this.appendEvents(tx, [...dead].map((digest) => ({ repository: NO_REPOSITORY, digest })));
    out.deleted = garbage.length;
    out.postponed = busy.length;
    for (const g of garbage) {
      out.bytes += g.size;
      addMediaType(out, BLOB_MEDIA_TYPE, g.size);
    }
  }

  private async reviewManifests(tx: Tx, out: GcBatchResult, claim: (keys: number[]) => void): Promise<void> {
    const claimed = await tx.gc.claimManifests(GC_BATCH);
    claim(claimed);
    out.reviewed = claimed.length;
    if (claimed.length === 0) return;
    const locked = new Set(await tx.gc.lockManifests(claimed));
    const busy = claimed.filter((id) => !locked.has(id));
    const garbage = await tx.gc.garbageManifests([...locked], {
      deleteUntagged: this.config.gc.deleteuntagged,
      deleteOrphanReferrers: this.config.gc.deleteorphanreferrers,
    });
    const dead = new Set(garbage.map((g) => g.id));
    // Drop the live ones' reviews before deleting: deleting an index (or a subject) queues its
    // children (or referrers) again by trigger, and a child judged live in this same batch (its
    // index still there) must keep that new review, or nothing ever looks at it again.
    await tx.gc.dropReviews(
      'manifests',
      [...locked].filter((id) => !dead.has(id)),
    );
    await tx.gc.deleteManifests(garbage);
    await tx.gc.postpone('manifests', busy, BUSY_BACKOFF_MS, this.config.gc.maxbackoff);
    await this.appendEvents(
      tx,
      garbage.map((g) => ({ repository: g.repository, digest: g.digest })),
    );
    out.deleted = garbage.length;
    out.postponed = busy.length;
    for (const g of garbage) {
      out.bytes += g.size;
      addMediaType(out, g.mediaType, g.size);
    }
  }

  /** Removes blobs from storage within `gc.blobs.storagetimeout`. */
  private async removeFromStorage(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    const removal = this.storage.deleteBlobs(digests);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.gc.blobs.storagetimeout);
    });
    try {
      if ((await Promise.race([removal, timeout])) === 'timeout') {
        // The removal may still land: wait for it to settle before the rows are unlocked (a push
        // of the same digest must not place bytes that this late removal then takes), then fail.
        await removal.catch(() => undefined);
        throw new Error(
          `removing ${digests.length} blobs from storage took longer than gc.blobs.storagetimeout (${this.config.gc.blobs.storagetimeout} ms)`,
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async appendEvents(tx: Tx, deleted: { repository: string; digest: string }[]): Promise<void> {
    if (deleted.length === 0) return;
    // The outbox's order lock is taken last by every writer (no cycle through it), and only for a
    // commit: wait for it as long as it takes rather than throw the batch's work away.
    await tx.gc.boundLockWaits(0);
    const entries: OutboxEntry[] = deleted.map((d) => ({
      event: buildRegistryEvent(
        { ...this.scope, repository: d.repository },
        deleteEvent(d.repository, { digest: d.digest }),
        this.db.source,
      ),
      traceparent: null,
      tenant: null,
    }));
    await tx.outbox.appendMany(entries);
  }

  private count(r: GcBatchResult): void {
    const c = this.counters;
    c.reviewed += r.reviewed;
    c.deleted += r.deleted;
    c.bytes += r.bytes;
    c.postponed += r.postponed;
    const q = c.byQueue[r.queue];
    q.reviewed += r.reviewed;
    q.deleted += r.deleted;
    q.bytes += r.bytes;
    addMediaTypes(c.byMediaType, r.byMediaType);
    const queue = { queue: r.queue };
    gcMetrics.reviewed.inc(queue, r.reviewed);
    gcMetrics.deleted.inc(queue, r.deleted);
    gcMetrics.bytes.inc(queue, r.bytes);
    gcMetrics.postponed.inc(queue, r.postponed);
  }

  private async loop(queue: GcQueue, intervalMs: number): Promise<void> {
    while (!this.stopping) {
      let pass = emptyResult(queue);
      for (;;) {
        const r = await this.reviewBatch(queue);
        pass = merge(pass, r);
        if (r.reviewed < GC_BATCH || r.postponed === r.reviewed || this.stopping) break;
      }
      if (pass.reviewed > 0) {
        this.counters.runs++;
        gcMetrics.runs.inc({ queue });
        await this.db.read.gc
          .recordRun({
            worker: this.worker,
            kind: queue,
            reviewed: pass.reviewed,
            deleted: pass.deleted,
            bytes: pass.bytes,
          })
          .catch((e: Error) => this.logger.warn(`recording a GC run failed: ${e.message}`));
        if (pass.deleted > 0)
          this.logger.log(
            `${queue}: reviewed ${pass.reviewed}, deleted ${pass.deleted} (${pass.bytes} bytes), postponed ${pass.postponed}`,
          );
      }
      if (queue === 'blobs') await this.db.read.gc.prunePins().catch(() => 0);
      await this.sleep(intervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}

function emptyQueueCounter(): { reviewed: number; deleted: number; bytes: number } {
  return { reviewed: 0, deleted: 0, bytes: 0 };
}

function emptyResult(queue: GcQueue): GcBatchResult {
  return { queue, reviewed: 0, deleted: 0, bytes: 0, postponed: 0, byMediaType: {} };
}

function merge(a: GcBatchResult, b: GcBatchResult): GcBatchResult {
  const byMediaType = structuredClone(a.byMediaType);
  addMediaTypes(byMediaType, b.byMediaType);
  return {
    queue: a.queue,
    reviewed: a.reviewed + b.reviewed,
    deleted: a.deleted + b.deleted,
    bytes: a.bytes + b.bytes,
    postponed: a.postponed + b.postponed,
    byMediaType,
  };
}

/** Adds the per-media-type counts of `from` into `into`. */
export function addMediaTypes(
  into: Record<string, { rows: number; bytes: number }>,
  from: Record<string, { rows: number; bytes: number }>,
): void {
  for (const [type, v] of Object.entries(from)) {
    const t = (into[type] ??= { rows: 0, bytes: 0 });
    t.rows += v.rows;
    t.bytes += v.bytes;
  }
}

function addMediaType(out: GcBatchResult, type: string, bytes: number): void {
  const t = (out.byMediaType[type] ??= { rows: 0, bytes: 0 });
  t.rows++;
  t.bytes += bytes;
}

function sameLink(a: LinkKey, b: LinkKey): boolean {
  return a.repositoryId === b.repositoryId && a.digest === b.digest;
}
