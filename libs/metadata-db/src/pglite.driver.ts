import { EventEmitter } from 'node:events';
import type { PGlite } from '@electric-sql/pglite';

/**
 * A `pg`-shaped driver over one PGlite instance, for TypeORM's postgres driver.
 *
 * PGlite has a single session. A pool that hands that session to several callers at once lets
 * concurrent transactions interleave (a rollback undoes another caller's writes, uncommitted rows
 * leak). So this is a pool of one: `connect` waits until the previous holder released it, and a
 * transaction keeps the session until it ends. Callers must therefore never wait on a second
 * connection while holding one (inside a transaction, use its manager only).
 */
export function createPgliteDriver(db: PGlite): { Pool: new (options?: unknown) => PglitePool } {
  const lock = new SessionLock();
  const client = new PgliteClient(db);
  return {
    Pool: class extends PglitePool {
      constructor() {
        super(db, lock, client);
      }
    },
  };
}

/** Hands the single session out to one holder at a time, in arrival order. */
class SessionLock {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.held = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.release();
        });
      };
      if (!this.held) grant();
      else this.waiters.push(grant);
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}

interface PgResult {
  rows: unknown[];
  rowCount: number;
  command: string;
  fields: unknown[];
}

/** The client TypeORM queries through; results are reshaped to what `pg` returns. */
class PgliteClient extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  async query(text: string, params?: unknown[] | ((err: unknown, res?: PgResult) => void)): Promise<PgResult> {
    const values = Array.isArray(params) ? params : undefined;
    if (values && values.length > 0) {
      const r = await this.db.query(text, values);
      return toPgResult(text, r);
    }
    // Without parameters a string may hold several statements (migrations); pg answers the last.
    const results = await this.db.exec(text);
    return toPgResult(text, results[results.length - 1] ?? { rows: [], fields: [] });
  }
}

function toPgResult(text: string, r: { rows: unknown[]; fields: unknown[]; affectedRows?: number }): PgResult {
  const command = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '';
  return { rows: r.rows, fields: r.fields, rowCount: r.affectedRows ?? r.rows.length, command };
}

/** The pool TypeORM sees. */
export class PglitePool extends EventEmitter {
  readonly totalCount = 1;
  constructor(
    private readonly db: PGlite,
    private readonly lock: SessionLock,
    private readonly client: PgliteClient,
  ) {
    super();
  }

  connect(callback?: (err: unknown, client?: PgliteClient, release?: () => void) => void): Promise<PgliteClient> | void {
    const p = this.lock.acquire();
    if (!callback) {
      return p.then((release) => Object.assign(Object.create(this.client), { release }));
    }
    p.then(
      (release) => callback(null, this.client, release),
      (err) => callback(err),
    );
  }

  async query(text: string, params?: unknown[]): Promise<PgResult> {
    const release = await this.lock.acquire();
    try {
      return await this.client.query(text, params);
    } finally {
      release();
    }
  }

  end(callback?: (err?: unknown) => void): Promise<void> {
    const p = this.db.close();
    if (callback) p.then(() => callback(), callback);
    return p;
  }
}
