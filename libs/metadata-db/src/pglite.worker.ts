/**
 * The embedded PGlite database, on a thread of its own.
 *
 * PGlite is PostgreSQL compiled to WebAssembly: every statement runs as CPU work on the thread
 * that owns the instance. On the registry's main thread that stalls every request behind it (a
 * 1000-row pull-event INSERT took 39–72 ms, during which no GET was answered). Here it runs on a
 * worker thread; the main thread sends statement texts and parameters and gets rows back
 * (`pglite.driver.ts`, which also keeps the single session to one holder at a time).
 *
 * Imports only Node and PGlite (and the bytea codec): it is loaded as a thread's entry point.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { PGlite } from '@electric-sql/pglite';
import { BYTEA_OID, byteaColumns, parseByteaHex, serializeByteaParam } from './pglite-bytea';

/** What the main thread hands the thread at its start. */
export interface PgliteThreadData {
  kind: 'lading-pglite';
  /** A data folder, or `memory://`. */
  dir: string;
}

/** A statement for the thread: with `values`, one prepared statement; without, a script (`exec`). */
export type PgliteRequest = { id: number; op: 'query'; text: string; values?: unknown[] } | { id: number; op: 'close' };

/** The rows of a statement, as PGlite's parser gives them (bytea values as Uint8Array). */
export interface PgliteRawResult {
  rows: Record<string, unknown>[];
  fields: { name: string; dataTypeID: number }[];
  affectedRows?: number;
}

/** An error's message and its primitive fields (`code`, `detail`, `constraint`…): what crosses threads. */
export interface PgliteErrorShape {
  message: string;
  fields: Record<string, string | number | boolean | null>;
}

export type PgliteReply =
  | { id: number; result: PgliteRawResult }
  | { id: number; error: PgliteErrorShape }
  | { id: 0; ready: true }
  | { id: 0; fatal: PgliteErrorShape };

const INT8_OID = 20;

/** Named statements kept per session; beyond this many, the least recently prepared is closed. */
const MAX_PREPARED = 256;

type PgliteModule = typeof import('@electric-sql/pglite');
type BackendMessage = Awaited<ReturnType<PGlite['execProtocol']>>['messages'][number];

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
export class PreparedStatements {
  private readonly cache = new Map<string, Prepared>();
  private next = 0;

  private readonly serialize: PgliteModule['protocol']['serialize'];

  constructor(
    private readonly db: PGlite,
    private readonly pglite: Pick<PgliteModule, 'parse' | 'protocol'>,
  ) {
    this.serialize = pglite.protocol.serialize;
  }

  run(text: string, values: unknown[]): Promise<PgliteRawResult> {
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
      return (this.pglite.parse.parseResults(messages, this.db.parsers)[0] ?? { rows: [], fields: [] }) as PgliteRawResult;
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

/** An error as it crosses threads: its message and primitive fields (structured clone keeps neither reliably). */
export function errorShape(e: unknown): PgliteErrorShape {
  const fields: PgliteErrorShape['fields'] = {};
  if (e && typeof e === 'object') {
    for (const [k, v] of Object.entries(e)) {
      if (k !== 'message' && (v === null || ['string', 'number', 'boolean'].includes(typeof v))) fields[k] = v as string | number | boolean | null;
    }
  }
  return { message: e instanceof Error ? e.message : String(e), fields };
}

/** The ArrayBuffers of a result's bytea values, moved to the main thread rather than copied. */
function byteaBuffers(result: PgliteRawResult): ArrayBuffer[] {
  const columns = byteaColumns(result.fields);
  if (columns.length === 0) return [];
  const buffers = new Set<ArrayBuffer>();
  for (const row of result.rows) {
    for (const c of columns) {
      const v = row[c];
      if (v instanceof Uint8Array && v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) buffers.add(v.buffer);
    }
  }
  return [...buffers];
}

async function serve(data: PgliteThreadData): Promise<void> {
  const port = parentPort!;
  let db: PGlite;
  let statements: PreparedStatements;
  try {
    const pglite = await import('@electric-sql/pglite');
    db = await pglite.PGlite.create(data.dir, {
      parsers: { [INT8_OID]: (v: string) => Number(v), [BYTEA_OID]: parseByteaHex },
      // Typed as returning text, but PGlite sends a returned Uint8Array as a binary parameter:
      // its default turns each byte into hex text, about 65 bytes of heap per payload byte.
      serializers: { [BYTEA_OID]: serializeByteaParam as (v: unknown) => string },
      // PGlite keeps shared buffers in WebAssembly memory, which counts in full towards RSS;
      // the OS page cache does the caching instead (297 MB -> 175 MB resident, measured).
      postgresqlconf: ['shared_buffers=8MB'],
    });
    statements = new PreparedStatements(db, pglite);
  } catch (e) {
    port.postMessage({ id: 0, fatal: errorShape(e) } satisfies PgliteReply);
    return;
  }
  port.on('message', (request: PgliteRequest) => {
    void answer(request).then(
      ([reply, transfer]) => port.postMessage(reply, transfer),
      (e: unknown) => port.postMessage({ id: request.id, error: errorShape(e) } satisfies PgliteReply),
    );
  });
  port.postMessage({ id: 0, ready: true } satisfies PgliteReply);

  async function answer(request: PgliteRequest): Promise<[PgliteReply, ArrayBuffer[]]> {
    if (request.op === 'close') {
      await db.close();
      return [{ id: request.id, result: { rows: [], fields: [] } }, []];
    }
    let result: PgliteRawResult;
    if (request.values && request.values.length > 0) {
      result = await statements.run(request.text, request.values);
    } else {
      // Without parameters a string may hold several statements (migrations); pg answers the last.
      const results = await db.exec(request.text);
      result = (results[results.length - 1] ?? { rows: [], fields: [] }) as PgliteRawResult;
    }
    return [{ id: request.id, result }, byteaBuffers(result)];
  }
}

const data = workerData as PgliteThreadData | undefined;
if (parentPort && data?.kind === 'lading-pglite') void serve(data);
