import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { Client as HttpClient } from 'undici';
import type { RegistryTestClient, TestResponse } from '@lading/testing';
import { startLading, type LadingProcess, type SplitStack } from './registry-processes';

/** How a process is taken down: a graceful SIGTERM or a SIGKILL (no shutdown hooks at all). */
export type Takedown = 'sigterm' | 'sigkill';

/**
 * Takes `app` of the stack down and starts a new process of it on the same address with the
 * same environment, as a supervisor would; the stack's `apps` entry is replaced so that
 * `stack.stop()` stops the new one. Callers keep using the same gateway URL.
 */
export async function restartInPlace(stack: SplitStack, app: 'blob-upload' | 'manifests', how: Takedown): Promise<LadingProcess> {
  const old = stack.apps[app];
  const port = Number(new URL(old.url).port);
  await (how === 'sigkill' ? old.kill9() : old.stop());
  const addrKey = `LADING_SERVICES_${app.replace('-', '').toUpperCase()}_ADDR`;
  const fresh = await startLading(app, { ...stack.env, [addrKey]: `127.0.0.1:${port}` }, port);
  stack.apps[app] = fresh;
  return fresh;
}

/** True while the process runs (no exit code, no terminating signal). */
export function isRunning(p: LadingProcess): boolean {
  return p.proc.exitCode === null && p.proc.signalCode === null;
}

/** Asserts every process is still running and answers ready; the message carries its log. */
export async function expectAllHealthy(processes: LadingProcess[]): Promise<void> {
  for (const p of processes) {
    if (!isRunning(p)) throw new Error(`${p.app} (${p.url}) is not running any more:\n${p.log()}`);
    const r = await fetch(`${p.url}/healthz/ready`);
    if (r.status !== 200) throw new Error(`${p.app} (${p.url}) /healthz/ready answered ${r.status}:\n${p.log()}`);
  }
}

/** Runs `fn` with a connection to the stack's database. */
export async function withDb<T>(databaseUrl: string, fn: (db: Client) => Promise<T>): Promise<T> {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

/** Row counts of the registry's content tables. */
export async function contentRowCounts(databaseUrl: string): Promise<Record<string, number>> {
  return withDb(databaseUrl, async (db) => {
    const counts: Record<string, number> = {};
    for (const table of ['blobs', 'repository_blobs', 'manifests', 'tags', 'repositories']) {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${table}`);
      counts[table] = rows[0].n;
    }
    return counts;
  });
}

/** Whether the `blobs` table has a row for `digest`. */
export async function blobRowExists(databaseUrl: string, digest: string): Promise<boolean> {
  return withDb(databaseUrl, async (db) => (await db.query('SELECT 1 FROM blobs WHERE digest = $1', [digest])).rowCount === 1);
}

/** The committed size of upload session `id` in the database, or undefined without a row. */
export async function sessionSizeInDb(databaseUrl: string, id: string): Promise<number | undefined> {
  return withDb(databaseUrl, async (db) => {
    const { rows } = await db.query('SELECT size::bigint::text AS size FROM upload_sessions WHERE id = $1', [id]);
    return rows[0] ? Number(rows[0].size) : undefined;
  });
}

/** Files under `<dataDir>/storage/blobs` that hold `digest` (each `data` file found for it). */
export function storedCopies(dataDir: string, digest: string): string[] {
  const [algorithm, hex] = digest.split(':');
  const root = join(dataDir, 'storage', 'blobs', algorithm);
  const found: string[] = [];
  for (const prefix of listDir(root)) {
    for (const name of listDir(join(root, prefix))) {
      if (name === hex && existsSync(join(root, prefix, name, 'data'))) found.push(join(root, prefix, name, 'data'));
    }
  }
  return found;
}

/** Upload folders left under `<dataDir>/storage/uploads`. */
export function leftoverUploads(dataDir: string): string[] {
  return listDir(join(dataDir, 'storage', 'uploads'));
}

/**
 * Bytes of the upload's part files on disk (recorded or not, including one still being
 * written), or undefined when the upload folder is gone.
 */
export function uploadBytesOnDisk(dataDir: string, id: string): number | undefined {
  const dir = join(dataDir, 'storage', 'uploads', id);
  if (!existsSync(dir)) return undefined;
  const parts = join(dir, 'parts');
  return listDir(parts).reduce((n, name) => n + (statSync(join(parts, name), { throwIfNoEntry: false })?.size ?? 0), 0);
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** An upload session as the tests drive it: its id, its path, and its committed Range. */
export interface Session {
  id: string;
  location: string;
}

/** Opens an upload session in `name`. */
export async function openSession(c: RegistryTestClient, name: string): Promise<Session> {
  const r = await c.call('POST', `/v2/${name}/blobs/uploads/`);
  if (r.status !== 202) throw new Error(`POST upload: ${r.status} ${r.body}`);
  return { id: r.headers['docker-upload-uuid'], location: r.headers.location };
}

/** PATCH of `body` at `start` (with Content-Range and Content-Length when the length is known). */
export function patchChunk(
  c: RegistryTestClient,
  session: Session,
  start: number,
  body: Buffer | AsyncIterable<Buffer>,
  length: number,
): Promise<TestResponse> {
  return c.call('PATCH', session.location, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `${start}-${start + length - 1}`,
      'content-length': String(length),
    },
    body,
  });
}

/** The committed size the session reports (`GET` status: `Range: 0-<last>`), or the status on error. */
export async function reportedSize(c: RegistryTestClient, session: Session): Promise<number> {
  const r = await c.call('GET', session.location);
  if (r.status !== 204) throw new Error(`GET upload status: ${r.status} ${r.body}`);
  return sizeOfRange(r.headers.range);
}

/** The byte count a `Range: 0-<last>` upload header stands for (`0-0` is ambiguous: 0 or 1). */
export function sizeOfRange(range: string | undefined): number {
  const m = /^0-(\d+)$/.exec(range ?? '');
  if (!m) throw new Error(`unexpected Range header: ${range}`);
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}

/** PUT that completes `session` as `digest`, with an optional last chunk. */
export function completeSession(c: RegistryTestClient, session: Session, digest: string, last?: Buffer): Promise<TestResponse> {
  const sep = session.location.includes('?') ? '&' : '?';
  return c.call('PUT', `${session.location}${sep}digest=${digest}`, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(last?.length ?? 0) },
    body: last ?? Buffer.alloc(0),
  });
}

/**
 * One request on a connection of its own, closed afterwards. For requests the registry may answer
 * before reading their body (416, 404…): through the gateway such an answer leaves the
 * keep-alive connection unusable (a known gateway bug), which must not stall a shared client.
 */
export async function callAlone(
  baseUrl: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer } = {},
): Promise<TestResponse> {
  const client = new HttpClient(baseUrl);
  try {
    const res = await client.request({ method: method as never, path, headers: options.headers, body: options.body });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status: res.statusCode, headers, body, json: () => JSON.parse(body.toString('utf8')) };
  } finally {
    await client.destroy();
  }
}

/** `patchChunk` of a buffer, on a connection of its own (see `callAlone`). */
export function patchChunkAlone(baseUrl: string, session: Session, start: number, body: Buffer): Promise<TestResponse> {
  return callAlone(baseUrl, 'PATCH', session.location, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `${start}-${start + body.length - 1}`,
      'content-length': String(body.length),
    },
    body,
  });
}
