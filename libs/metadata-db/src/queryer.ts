import type { DataSource, EntityManager } from 'typeorm';

/** Rows and affected-row count of one statement. */
export interface SqlResult<T> {
  rows: T[];
  affected: number;
}

/**
 * What a store runs its statements through: the pool (one statement, autocommit) or an open
 * transaction. Stores take one and never know which, as in GitLab's `datastore.Queryer`.
 */
export interface Queryer {
  /** Runs one parameterised statement. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<SqlResult<T>>;
}

/** A Queryer over a TypeORM manager: its transaction when it has one, else a pooled connection per statement. */
export function managerQueryer(manager: EntityManager): Queryer {
  return {
    async query<T>(text: string, params: unknown[] = []): Promise<SqlResult<T>> {
      const own = manager.queryRunner ? undefined : manager.connection.createQueryRunner();
      const runner = manager.queryRunner ?? own!;
      try {
        const r = await runner.query(text, params, true);
        return { rows: (r.records ?? []) as T[], affected: r.affected ?? 0 };
      } finally {
        if (own) await own.release();
      }
    },
  };
}

/** A Queryer over the pool of `ds`. */
export function poolQueryer(ds: DataSource): Queryer {
  return managerQueryer(ds.manager);
}

/** PostgreSQL's unique_violation, whichever driver raised it. */
export function isUniqueViolation(e: unknown): boolean {
  return pgCode(e) === '23505';
}

/** PostgreSQL's foreign_key_violation, whichever driver raised it. */
export function isForeignKeyViolation(e: unknown): boolean {
  return pgCode(e) === '23503';
}

/** PostgreSQL's lock_not_available: a `lock_timeout` or `NOWAIT` lock that was held by another. */
export function isLockNotAvailable(e: unknown): boolean {
  return pgCode(e) === '55P03';
}

/** A conflict that retrying the whole transaction resolves (serialization failure, deadlock). */
export function isRetryableConflict(e: unknown): boolean {
  const code = pgCode(e);
  return code === '40001' || code === '40P01';
}

function pgCode(e: unknown): string | undefined {
  const err = e as { code?: string; driverError?: { code?: string } } | null;
  return err?.code ?? err?.driverError?.code;
}

/** bytea comes back as a Buffer from pg and a Uint8Array from PGlite; callers get a Buffer. */
export function asBuffer(v: Uint8Array | Buffer): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
