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
 * What {@link ReconcileStore.deleteIfUnknown} found: `deleted` (no row and no commit under way:
 * the bytes were removed), `known` (a row exists, or a transaction inserting one committed while
 * the delete waited for it), `committing` (an upload session is committing that digest), `busy`
 * (a transaction kept the row locked longer than the lock timeout; nothing was done).
 */
export type UnknownBlobOutcome = 'deleted' | 'known' | 'committing' | 'busy';

/** How long the guarded delete waits for a transaction that is writing the same row. */
const CLAIM_LOCK_TIMEOUT = '30s';

/** PostgreSQL's lock_not_available (a `lock_timeout` ran out), whichever driver raised it. */
function isLockTimeout(e: unknown): boolean {
  const err = e as { code?: string; driverError?: { code?: string } } | null;
  return (err?.code ?? err?.driverError?.code) === '55P03';
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
   * Calls `remove` (which deletes the bytes of `digest`) only if no `blobs` row exists for the
   * digest and no upload session is committing it, and holds a push that is inserting that row
   * off until `remove` is done.
   *
   * How: in one transaction, `INSERT … ON CONFLICT DO NOTHING` a row for the digest. A row that
   * exists, or that an open transaction is inserting (PostgreSQL makes the insert wait for that
   * transaction's outcome), means the digest is known: nothing is removed. Otherwise the new row
   * is a claim: a push inserting the row now waits on it until `remove` has run and the
   * transaction is rolled back (always rolled back: the table is left as it was). A plain
   * `SELECT … FOR UPDATE` would not do: it locks no row that does not exist yet and does not see
   * one that an open transaction is inserting.
   *
   * What it cannot stop: a push whose storage commit found these very bytes in place (same
   * digest, same size: it writes nothing) and whose row insert comes after the claim. It waits,
   * then inserts a row for bytes `remove` deleted. See the README ("lading gc reconcile").
   */
  async deleteIfUnknown(digest: string, size: number, remove: () => Promise<void>): Promise<UnknownBlobOutcome> {
    const runner = this.db.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      try {
        const q = managerQueryer(runner.manager);
        await q.query(`SET LOCAL lock_timeout = '${CLAIM_LOCK_TIMEOUT}'`);
        const claimed = await q.query(
          'INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING RETURNING digest',
          [digest, size],
        );
        if (claimed.rows.length === 0) return 'known';
        const committing = await q.query('SELECT 1 FROM upload_sessions WHERE committing_digest = $1 LIMIT 1', [
          digest,
        ]);
        if (committing.rows.length > 0) return 'committing';
        await remove();
        return 'deleted';
      } catch (e) {
        if (isLockTimeout(e)) return 'busy';
        throw e;
      } finally {
        await runner.rollbackTransaction();
      }
    } finally {
      await runner.release();
    }
  }
}
