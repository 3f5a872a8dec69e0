import { EventEmitter } from 'node:events';
import type { PGlite } from '@electric-sql/pglite';

/** The PGlite module the instance came from (its protocol serializer and result parser). */
export type PgliteModule = Pick<typeof import('@electric-sql/pglite'), 'parse' | 'protocol'>;

/**
 * A `pg`-shaped driver over one PGlite instance, for TypeORM's postgres driver.
 *
 * PGlite has a single session. A pool that hands that session to several callers at once lets
 * concurrent transactions interleave (a rollback undoes another caller's writes, uncommitted rows
 * leak). So this is a pool of one: `connect` waits until the previous holder released it, and a
 * transaction keeps the session until it ends. Callers must therefore never wait on a second
 * connection while holding one (inside a transaction, use its manager only).
 */
export function createPgliteDriver(db: PGlite, pglite: PgliteModule): { Pool: new (options?: unknown) => PglitePool } {
  const lock = new SessionLock();
  const client = new PgliteClient(db, pglite);
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
  private readonly statements: PreparedStatements;

  constructor(
    private readonly db: PGlite,
    pglite: PgliteModule,
  ) {
    super();
    this.statements = new PreparedStatements(db, pglite);
  }

  async query(text: string, params?: unknown[] | ((err: unknown, res?: PgResult) => void)): Promise<PgResult> {
    const values = Array.isArray(params) ? params : undefined;
    if (values && values.length > 0) return toPgResult(text, await this.statements.run(text, values));
    // Without parameters a string may hold several statements (migrations); pg answers the last.
    const results = await this.db.exec(text);
    return toPgResult(text, results[results.length - 1] ?? { rows: [], fields: [] });
  }
}

/** Named statements kept per session; beyond this many, the least recently prepared is closed. */
const MAX_PREPARED = 256;

interface Prepared {
  name: string;
  paramTypes: number[];
}

/**
 * Parameterised statements as named prepared statements of the one session, so each text is
 * parsed (and, once PostgreSQL settles on a generic plan, planned) once instead of on every call,
 * and a call is one protocol exchange (bind, describe, execute, sync) instead of PGlite's
 * `query`, which parses, describes and plans the text anew each time in six exchanges. The store
 * layer's statements are a fixed set of texts, so the cache stays small; it is bounded anyway.
 */
class PreparedStatements {
  private readonly cache = new Map<string, Prepared>();
  private next = 0;

  private readonly serialize: PgliteModule['protocol']['serialize'];

  constructor(
    private readonly db: PGlite,
    private readonly pglite: PgliteModule,
  ) {
    this.serialize = pglite.protocol.serialize;
  }

  run(text: string, values: unknown[]): Promise<{ rows: unknown[]; fields: unknown[]; affectedRows?: number }> {
    return this.db.runExclusive(async () => {
      const statement = this.cache.get(text) ?? (await this.prepare(text));
      const bind = this.serialize.bind({ statement: statement.name, values: values.map((v, i) => this.param(v, statement.paramTypes[i]!)) as string[] });
      const messages = await this.exchange(bind, this.serialize.describe({ type: 'P' }), this.serialize.execute({}));
      const error = databaseError(messages);
      if (error) {
        // A schema change under a cached SELECT: prepare it afresh next time.
        if (error.code === '0A000') await this.forget(text);
        throw error;
      }
      // As PGlite's `query` persists an autocommitted statement; in a transaction, COMMIT (through `exec`) does.
      if (!this.db.isInTransaction()) await this.db.syncToFs();
      return this.pglite.parse.parseResults(messages, this.db.parsers)[0] ?? { rows: [], fields: [] };
    });
  }

  private async prepare(text: string): Promise<Prepared> {
    const name = `lading_${this.next++}`;
    const messages = await this.exchange(this.serialize.parse({ name, text }), this.serialize.describe({ type: 'S', name }));
    const error = databaseError(messages);
    if (error) throw error;
    const description = messages.find((m) => m.name === 'parameterDescription') as { dataTypeIDs: number[] } | undefined;
    const prepared = { name, paramTypes: description?.dataTypeIDs ?? [] };
    if (this.cache.size >= MAX_PREPARED) await this.forget(this.cache.keys().next().value!);
    this.cache.set(text, prepared);
    return prepared;
  }

  private async forget(text: string): Promise<void> {
    const prepared = this.cache.get(text);
    if (!prepared) return;
    this.cache.delete(text);
    await this.exchange(this.serialize.close({ type: 'S', name: prepared.name }));
  }

  /** Sends `messages` and a sync in one exchange; the backend's answers, errors included (never thrown). */
  private async exchange(...messages: Uint8Array[]): Promise<BackendMessage[]> {
    const { messages: answers } = await this.db.execProtocol(concat(...messages, this.serialize.sync()), { throwOnError: false, syncToFs: false });
    return answers;
  }

  /** As PGlite's `query` serializes a parameter: by its type's serializer, else as text. */
  private param(value: unknown, type: number): unknown {
    if (value === null || value === undefined) return null;
    const serializer = this.db.serializers[type];
    return serializer ? serializer(value) : String(value);
  }
}

type BackendMessage = Awaited<ReturnType<PGlite['execProtocol']>>['messages'][number];

/** The error among a backend's answers (PGlite's class is not ours to `instanceof`: it may come from its other build). */
function databaseError(messages: BackendMessage[]): (Error & { code?: string }) | undefined {
  return messages.find((m) => m.name === 'error') as (Error & { code?: string }) | undefined;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
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
