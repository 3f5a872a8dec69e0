import type { BlobRow, ReconcileStore, UnknownBlobOutcome } from '@lading/metadata-db';
import type { BlobInfo, BlobStat, BlobStorage } from '@lading/storage';
import { NO_PROGRESS, type ProgressSink } from './progress';

/** What reconcile reads and deletes in storage. */
export type ReconcileStorage = Pick<BlobStorage, 'listBlobInfo' | 'currentTime' | 'statBlob' | 'deleteBlobs'>;
/** What reconcile reads in the database. */
export type ReconcileRows = Pick<ReconcileStore, 'totals' | 'rows' | 'sizesOf' | 'deleteUnknownBlobs'>;

/** Options of one reconcile pass. */
export interface ReconcileOptions {
  /** Delete orphans older than the review delay (never when `dryRun`). */
  delete: boolean;
  /** Change nothing, whatever else is asked; with `delete`, report what it would delete. */
  dryRun: boolean;
  /** `gc.reviewafter`, in ms: how old (by the storage's clock) an orphan must be to be deleted. */
  reviewAfter: number;
  /** Orphans stored at or before this (storage clock) may be deleted; default: the storage's time now minus `reviewAfter`. For tests. */
  cutoff?: Date;
  progress?: ProgressSink;
}

/**
 * What became of an object no row knows: `young` (stored after the cutoff: kept, it may be a
 * push in flight), `old` (older: `--delete` would remove it), `deleted`, or kept because, when
 * the delete re-checked, a row had appeared (`known`: a push finished meanwhile), an upload was
 * committing it (`committing`) or a transaction held its row too long (`busy`).
 */
export type OrphanStatus = 'young' | 'old' | Exclude<UnknownBlobOutcome, 'deleted'> | 'deleted';

/** An object in storage that no `blobs` row knows. */
export interface OrphanBlob {
  digest: string;
  size: number;
  /** When it was stored, by the storage's clock. */
  modified: Date;
  status: OrphanStatus;
}

/** A `blobs` row whose bytes are missing from storage, or stored with another size. */
export interface MissingBlob {
  digest: string;
  /** The size the row records. */
  size: number;
  /** When the row was written, by the database's clock. */
  createdAt: Date;
  /** The size of the object found under the digest; null when there is none. */
  storedSize: number | null;
}

/** A count and the bytes it holds. */
export interface Tally {
  count: number;
  bytes: number;
}

/** The outcome of one pass: complete lists (the command prints them bounded, or all with `--json`). */
export interface ReconcileReport {
  mode: 'report' | 'dry-run' | 'delete';
  /** The storage's clock when the pass began, and the cutoff for orphans derived from it. */
  storageTime: Date;
  cutoff: Date;
  reviewAfter: number;
  /** What the walk saw on each side. */
  storage: Tally;
  database: Tally;
  orphans: Tally & { items: OrphanBlob[] };
  missing: Tally & { items: MissingBlob[] };
  deleted: Tally;
}

const RECHECK_BATCH = 500;
/**
 * Orphans deleted under one claim: the claim's table locks hold uploads' commits off for one
 * storage request (one S3 DeleteObjects), so a batch is small.
 */
const DELETE_BATCH = 100;

/**
 * `lading gc reconcile`: compares the blobs in storage with the `blobs` rows, the database
 * being the truth of what exists. Reports objects no row knows (orphans: left by a crash between
 * a push's storage commit and its row, or by old bugs) and rows whose bytes are missing or have
 * another size, and with `delete` removes the orphans older than the review delay. Rows are
 * never changed: missing bytes are reported, not "fixed". Upload areas are `lading gc uploads`'
 * business, not this pass's.
 *
 * How: one merge of two lists in digest order, the storage listing and the rows (neither held in
 * memory; only the differences are); then each difference is checked again (a push or delete
 * during the walk shows as one), and the orphans old enough are deleted, a batch at a time,
 * through `ReconcileStore.deleteUnknownBlobs`, which re-checks rows and commits in progress
 * under a claim that holds off a push of those digests. Ages are the storage's own times
 * against the storage's clock now, never a process clock.
 */
export class ReconcileService {
  constructor(
    private readonly rows: ReconcileRows,
    private readonly storage: ReconcileStorage,
  ) {}

  /** One pass. @throws Error when either list comes out of digest order (nothing is deleted then). */
  async reconcile(options: ReconcileOptions): Promise<ReconcileReport> {
    const progress = options.progress ?? NO_PROGRESS;
    const storageTime = await this.storage.currentTime();
    const cutoff = options.cutoff ?? new Date(storageTime.getTime() - options.reviewAfter);
    const report: ReconcileReport = {
      mode: options.dryRun ? 'dry-run' : options.delete ? 'delete' : 'report',
      storageTime,
      cutoff,
      reviewAfter: options.reviewAfter,
      storage: { count: 0, bytes: 0 },
      database: { count: 0, bytes: 0 },
      orphans: { count: 0, bytes: 0, items: [] },
      missing: { count: 0, bytes: 0, items: [] },
      deleted: { count: 0, bytes: 0 },
    };
    const totals = await this.rows.totals();
    progress.phase('comparing storage with the database', { items: totals.count, bytes: totals.bytes });
    const candidates = await this.compare(report, progress);

    progress.phase('checking differences again', { items: candidates.orphans.length + candidates.missing.length });
    report.orphans.items = await this.recheck(
      candidates.orphans,
      progress,
      (blob, rowSize, stored): OrphanBlob | undefined =>
        rowSize !== undefined || stored === null
          ? undefined
          : { ...blob, status: blob.modified.getTime() <= cutoff.getTime() ? 'old' : 'young' },
    );
    report.missing.items = await this.recheck(
      candidates.missing,
      progress,
      (row, rowSize, stored): MissingBlob | undefined =>
        rowSize === undefined || stored?.size === rowSize
          ? undefined
          : { ...row, size: rowSize, storedSize: stored?.size ?? null },
    );
    tally(report.orphans);
    tally(report.missing);

    const old = report.orphans.items.filter((o) => o.status === 'old');
    if (report.mode === 'delete' && old.length > 0) {
      progress.phase('deleting orphans', { items: old.length, bytes: sum(old) });
      for (let i = 0; i < old.length; i += DELETE_BATCH) {
        const batch = old.slice(i, i + DELETE_BATCH);
        const outcomes = await this.rows.deleteUnknownBlobs(batch, (digests) => this.storage.deleteBlobs(digests));
        for (const orphan of batch) {
          orphan.status = outcomes.get(orphan.digest) ?? 'known';
          if (orphan.status === 'deleted') add(report.deleted, orphan.size);
        }
        progress.advance(batch.length, sum(batch));
      }
    }
    return report;
  }

  /** The merge: fills the tallies of both sides and returns the differences it saw. */
  private async compare(
    report: ReconcileReport,
    progress: ProgressSink,
  ): Promise<{ orphans: BlobInfo[]; missing: MissingBlob[] }> {
    const orphans: BlobInfo[] = [];
    const missing: MissingBlob[] = [];
    const stored = inDigestOrder(this.storage.listBlobInfo(), 'the storage listing')[Symbol.asyncIterator]();
    const rows = inDigestOrder(this.rows.rows(), 'the database (its collation)')[Symbol.asyncIterator]();
    let s = await stored.next();
    let r = await rows.next();
    while (!s.done || !r.done) {
      const blob: BlobInfo | undefined = s.done ? undefined : s.value;
      const row: BlobRow | undefined = r.done ? undefined : r.value;
      if (blob && (!row || blob.digest < row.digest)) {
        orphans.push(blob);
      } else if (row && (!blob || row.digest < blob.digest)) {
        missing.push({ ...row, storedSize: null });
      } else if (blob && row && blob.size !== row.size) {
        missing.push({ ...row, storedSize: blob.size });
      }
      if (blob && (!row || blob.digest <= row.digest)) {
        add(report.storage, blob.size);
        s = await stored.next();
      }
      // Progress counts rows (the totals are the table's); an orphan only keeps the display going.
      if (row && (!blob || row.digest <= blob.digest)) {
        add(report.database, row.size);
        progress.advance(1, row.size);
        r = await rows.next();
      } else {
        progress.advance(0);
      }
    }
    return { orphans, missing };
  }

  /**
   * Checks each difference again, now that the walk is over (a push or delete during the walk
   * shows as one): `judge` gets the size its row records now (undefined: no row) and its object
   * now, and returns what is still a difference, or undefined.
   */
  private async recheck<T extends { digest: string; size: number }, R>(
    candidates: readonly T[],
    progress: ProgressSink,
    judge: (item: T, rowSize: number | undefined, stored: BlobStat | null) => R | undefined,
  ): Promise<R[]> {
    const confirmed: R[] = [];
    for (let i = 0; i < candidates.length; i += RECHECK_BATCH) {
      const batch = candidates.slice(i, i + RECHECK_BATCH);
      const rows = await this.rows.sizesOf(batch.map((b) => b.digest));
      for (const item of batch) {
        progress.advance(1, item.size);
        const still = judge(item, rows.get(item.digest), await this.storage.statBlob(item.digest));
        if (still !== undefined) confirmed.push(still);
      }
    }
    return confirmed;
  }
}

/**
 * Passes `items` through, failing when one does not come strictly after the one before: the
 * merge is only right for two lists in the same order, and a wrong one would report live blobs
 * as orphans (deletes re-check every row, but the report would be wrong).
 */
async function* inDigestOrder<T extends { digest: string }>(items: AsyncIterable<T>, source: string): AsyncIterable<T> {
  let previous: string | undefined;
  for await (const item of items) {
    if (previous !== undefined && item.digest <= previous) {
      throw new Error(`${source} is not in digest order (${previous} came before ${item.digest}): nothing was changed`);
    }
    previous = item.digest;
    yield item;
  }
}

function add(t: Tally, bytes: number): void {
  t.count++;
  t.bytes += bytes;
}

function sum(items: readonly { size: number }[]): number {
  return items.reduce((n, i) => n + i.size, 0);
}

function tally(t: Tally & { items: readonly { size: number }[] }): void {
  t.count = t.items.length;
  t.bytes = sum(t.items);
}
