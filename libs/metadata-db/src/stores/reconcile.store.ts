import { managerQueryer, poolQueryer, type Queryer } from '../queryer';
import type { MetadataDb } from '../unit-of-work';

/** A `blobs` row as `lading gc reconcile` reads it. */
export interface BlobRow {
  digest: string;
  size: number;
  /** When the row was written, by the database's clock. */
  createdAt: Date;
}

/**
 * What {@link ReconcileStore.deleteUnknownBlobs} found for a digest: `deleted` (no row and no
 * commit under way: its bytes were removed), `known` (a row exists, or a transaction inserting
 * one committed while the delete waited for it), `committing` (an upload is committing that
 * digest: a chunked session's `committing_digest` or a single-request upload's commit pin),
 * `busy` (a lock was not had within the lock timeout, or a deadlock: nothing was done).
 */
export type UnknownBlobOutcome = 'deleted' | 'known' | 'committing' | 'busy';

/** How long the guarded delete waits for a lock (a transaction writing the same row, the tables it locks). */
const CLAIM_LOCK_TIMEOUT = '30s';

/** PostgreSQL's lock_not_available (a `lock_timeout` ran out) or deadlock_detected, whichever driver raised it. */
function isLockFailure(e: unknown): boolean {
  const err = e as { code?: string; driverError?: { code?: string } } | null;
  const code = err?.code ?? err?.driverError?.code;
  return code === '55P03' || code === '40P01';
}

/**
 * The queries of `lading gc reconcile`, which compares storage with the `blobs` rows: the rows
 * in digest order (to merge with a storage listing in that order), the rows of given digests,
 * and the guarded delete of bytes that no row knows. Built over the database rather than a
 * Queryer: the guarded delete runs a transaction of its own.
 */
export class ReconcileStore {
  private readonly q: Queryer;

  constructor(private readonly db: MetadataDb) {
    this.q = poolQueryer(db.dataSource);
  }

  /** How many rows `blobs` has and their total size (for progress). */
  async totals(): Promise<{ count: number; bytes: number }> {
    const { rows } = await this.q.query<{ count: number; bytes: number }>(
      'SELECT count(*)::bigint AS count, coalesce(sum(size), 0)::bigint AS bytes FROM blobs',
    );
    return { count: Number(rows[0].count), bytes: Number(rows[0].bytes) };
  }

  /**
   * Every `blobs` row in ascending digest order, a page of `pageSize` at a time (each page its
   * own statement, by the primary key: no long transaction). Rows written during the walk may or
   * may not appear. The order is the database's collation, which orders digests (lowercase hex
   * after a fixed prefix) by character code in every collation PostgreSQL ships; the caller checks.
   */
  async *rows(pageSize = 1000): AsyncIterable<BlobRow> {
    let after = '';
    for (;;) {
      const { rows } = await this.q.query<BlobRow>(
        'SELECT digest, size, created_at AS "createdAt" FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2',
        [after, pageSize],
      );
      for (const row of rows) yield { digest: row.digest, size: Number(row.size), createdAt: new Date(row.createdAt) };
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1].digest;
    }
  }

  /** The sizes recorded for those of `digests` that have a row. */
  async sizesOf(digests: readonly string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const { rows } = await this.q.query<{ digest: string; size: number }>(
      'SELECT digest, size FROM blobs WHERE digest = ANY($1::text[])',
      [digests],
    );
    return new Map(rows.map((r) => [r.digest, Number(r.size)]));
  }

  /**
   * Calls `remove` with those of `blobs` that no `blobs` row knows and no upload is committing
   * (it deletes their bytes), holding off, until it is done, every push that would make one of
   * them known: the outcome of each digest.
   *
   * How, in one transaction that is always rolled back (the tables end as they were):
   * 1. Claim: `INSERT … ON CONFLICT DO NOTHING` a row per digest. A row that exists, or that an
   *    open transaction is inserting (the insert waits for that transaction), makes the digest
   *    `known`. A claimed row holds off a push inserting it until the end. (`SELECT … FOR UPDATE`
   *    would not do: it locks no row that does not exist yet, nor sees one being inserted.)
   * 2. `LOCK TABLE blob_commit_pins, upload_sessions IN SHARE MODE`: waits for transactions
   *    writing either table, and makes new writes wait until the end, so that no upload can
   *    announce a commit of a claimed digest between the check and `remove`. An upload announces
   *    before its storage commit (a pin, or `committing_digest`), and that commit skips bytes
   *    that are already stored: without this, it could find the orphan's bytes, write nothing,
   *    and link a row to bytes `remove` then deletes. Held for one `remove` call: keep batches small.
   * 3. A digest with a pin or a committing session is `committing`; the rest go to `remove`.
   * @throws whatever `remove` throws (after the rollback); lock timeouts and deadlocks are `busy`.
   */
  async deleteUnknownBlobs(
    blobs: readonly { digest: string; size: number }[],
    remove: (digests: string[]) => Promise<void>,
  ): Promise<Map<string, UnknownBlobOutcome>> {
    // One order for every claimer, so two passes over the same digests wait rather than deadlock.
    const sorted = [...blobs].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const outcomes = new Map<string, UnknownBlobOutcome>(sorted.map((b) => [b.digest, 'known']));
    if (sorted.length === 0) return outcomes;
    const runner = this.db.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      try {
        const q = managerQueryer(runner.manager);
        await q.query(`SET LOCAL lock_timeout = '${CLAIM_LOCK_TIMEOUT}'`);
        const claimed = await q.query<{ digest: string }>(
          `INSERT INTO blobs (digest, size) SELECT * FROM unnest($1::text[], $2::bigint[])
           ON CONFLICT (digest) DO NOTHING RETURNING digest`,
          [sorted.map((b) => b.digest), sorted.map((b) => b.size)],
        );
        const unknown = claimed.rows.map((r) => r.digest);
        if (unknown.length === 0) return outcomes;
        await q.query('LOCK TABLE blob_commit_pins, upload_sessions IN SHARE MODE');
        const { rows } = await q.query<{ digest: string }>(
          `SELECT committing_digest AS digest FROM upload_sessions WHERE committing_digest = ANY($1::text[])
           UNION SELECT digest FROM blob_commit_pins WHERE digest = ANY($1::text[])`,
          [unknown],
        );
        const committing = new Set(rows.map((r) => r.digest));
        for (const d of committing) outcomes.set(d, 'committing');
        const doomed = unknown.filter((d) => !committing.has(d));
        if (doomed.length > 0) await remove(doomed);
        for (const d of doomed) outcomes.set(d, 'deleted');
        return outcomes;
      } catch (e) {
        if (!isLockFailure(e)) throw e;
        for (const b of sorted) outcomes.set(b.digest, 'busy');
        return outcomes;
      } finally {
        await runner.rollbackTransaction();
      }
    } finally {
      await runner.release();
    }
  }
}
