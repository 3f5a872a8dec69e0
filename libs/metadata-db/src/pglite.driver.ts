import { EventEmitter } from 'node:events';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { byteaColumns } from './pglite-bytea';
import { asBuffer } from './queryer';
import type { PgliteErrorShape, PgliteRawResult, PgliteReply, PgliteRequest, PgliteThreadData } from './pglite.worker';

/**
 * A `pg`-shaped driver over the embedded PGlite database, for TypeORM's postgres driver.
 *
 * PGlite has a single session. A pool that hands that session to several callers at once lets
 * concurrent transactions interleave (a rollback undoes another caller's writes, uncommitted rows
 * leak). So this is a pool of one: `connect` waits until the previous holder released it, and a
 * transaction keeps the session until it ends. Callers must therefore never wait on a second
 * connection while holding one (inside a transaction, use its manager only).
 */
export function createPgliteDriver(db: PgliteThread): { Pool: new (options?: unknown) => PglitePool } {
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

/**
 * The embedded database on its own thread (`pglite.worker.ts`): statements go to it as messages
 * and their rows come back, so PostgreSQL's work in WebAssembly never holds up the event loop
 * that serves requests. The thread does not keep the process alive while no statement is out.
 */
export class PgliteThread {
  private readonly pending = new Map<number, { resolve: (r: PgliteRawResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private gone: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: PgliteReply) => {
      if (reply.id === 0) return;
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.settled(reply.id);
      if ('error' in reply) call.reject(toError(reply.error));
      else if ('result' in reply) call.resolve(reply.result);
    });
    worker.on('exit', (code) => this.fail(new Error(`the embedded database thread stopped (exit code ${code})`)));
    worker.on('error', (e) => this.fail(new Error(`the embedded database thread failed: ${e.message}`)));
  }

  /** Starts a thread with PGlite opened on `dir` (a data folder or `memory://`); throws what opening threw. */
  static async start(dir: string): Promise<PgliteThread> {
    // From the TypeScript sources (tests, benchmarks) the thread compiles its entry as it loads it.
    const fromSources = extname(__filename) === '.ts';
    const worker = new Worker(join(__dirname, `pglite.worker${extname(__filename)}`), {
      workerData: { kind: 'lading-pglite', dir } satisfies PgliteThreadData,
      // The thread's own heap holds little for long (rows on their way out): a young generation
      // of 4 MB instead of V8's default (up to 48 MB) keeps its garbage from counting towards RSS
      // (conformance soak, 3 runs: peak 315 MB against 328 MB with the default).
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      ...(fromSources
        ? {
            execArgv: [...process.execArgv, '-r', require.resolve('@swc-node/register')],
            env: { ...process.env, SWC_NODE_PROJECT: join(__dirname, '../../../tsconfig.base.json') },
          }
        : {}),
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: PgliteReply) => {
        if (reply.id !== 0) return;
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        if ('fatal' in reply) {
          void worker.terminate();
          reject(toError(reply.fatal));
        } else resolve();
      };
      const onExit = (code: number) => reject(new Error(`the embedded database thread stopped while opening (exit code ${code})`));
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.once('error', reject);
    });
    worker.unref();
    return new PgliteThread(worker);
  }

  /** Runs one statement (with `values`: as a prepared statement) or, without, a script; its rows. */
  query(text: string, values?: unknown[]): Promise<PgliteRawResult> {
    return this.send({ id: this.nextId++, op: 'query', text, values: values?.map(sendable) }).then(withBuffers);
  }

  /** Closes the database and stops the thread. */
  async close(): Promise<void> {
    if (this.gone) return;
    await this.send({ id: this.nextId++, op: 'close' });
    this.gone = new Error('the embedded database is closed');
    await this.worker.terminate();
  }

  private send(request: PgliteRequest): Promise<PgliteRawResult> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(request.id, { resolve, reject });
      try {
        this.worker.postMessage(request);
      } catch (e) {
        // A value structured clone cannot carry (a function, a class instance's methods).
        this.settled(request.id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(e: Error): void {
    this.gone ??= e;
    for (const [id, call] of this.pending) {
      this.settled(id);
      call.reject(e);
    }
  }
}

/**
 * A parameter as it should cross to the thread: a view into a larger buffer (a small Buffer sits
 * in Node's shared 8 KiB pool) would carry that whole buffer, so only its own bytes go.
 */
function sendable(v: unknown): unknown {
  if (v instanceof Uint8Array && (v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength)) return v.slice();
  return v;
}

/** bytea values arrive as Uint8Array (structured clone drops Buffer); callers get Buffers, as from `pg`. */
function withBuffers(result: PgliteRawResult): PgliteRawResult {
  const columns = byteaColumns(result.fields);
  for (const row of columns.length > 0 ? result.rows : []) {
    for (const c of columns) {
      const v = row[c];
      if (v instanceof Uint8Array) row[c] = asBuffer(v);
    }
  }
  return result;
}

/** The thread's error as an Error here, with PostgreSQL's fields (`code`, `detail`, `constraint`…). */
function toError(shape: PgliteErrorShape): Error {
  return Object.assign(new Error(shape.message), shape.fields);
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
  constructor(private readonly db: PgliteThread) {
    super();
  }

  async query(text: string, params?: unknown[] | ((err: unknown, res?: PgResult) => void)): Promise<PgResult> {
    const values = Array.isArray(params) && params.length > 0 ? params : undefined;
    return toPgResult(text, await this.db.query(text, values));
  }
}

function toPgResult(text: string, r: PgliteRawResult): PgResult {
  const command = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '';
  return { rows: r.rows, fields: r.fields, rowCount: r.affectedRows ?? r.rows.length, command };
}

/** The pool TypeORM sees. */
export class PglitePool extends EventEmitter {
  readonly totalCount = 1;
  constructor(
    private readonly db: PgliteThread,
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
