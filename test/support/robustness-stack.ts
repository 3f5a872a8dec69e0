import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { Client as HttpClient } from 'undici';
import { S3BlobStorage, uploadPrefix } from '@lading/storage';
import type { RegistryTestClient, TestResponse } from '@lading/testing';
import { startLading, startSplit, type LadingProcess, type SplitStack } from './registry-processes';
import { servedRequests, startReplicated, type ReplicatedStack } from './replicated-stack';
import { testMinioClient, testS3Options } from './s3';

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

/**
 * What storage holds, as the robustness cases look at it: files under a data folder, or objects
 * under a root directory of the test bucket. Only for checking outcomes; the registry never
 * derives state from listings.
 */
export interface StorageProbe {
  /** The size of each stored copy of blob `digest`: none when it is not stored, more than one a duplicate. */
  blobCopies(digest: string): Promise<number[]>;
  /**
   * Bytes stored for upload `id`: its parts, recorded or not, and what a write in progress has
   * stored so far (on S3, the parts of an unfinished multipart upload); undefined once the
   * upload is gone.
   */
  uploadBytes(id: string): Promise<number | undefined>;
  /** The ids of the uploads storage holds. */
  uploads(): Promise<string[]>;
}

/** A {@link StorageProbe} of the filesystem driver under `<dataDir>/storage`. */
export function filesystemProbe(dataDir: string): StorageProbe {
  const root = join(dataDir, 'storage');
  return {
    async blobCopies(digest) {
      // Every `data` file found for the digest, whatever prefix folder it is in.
      const [algorithm, hex] = digest.split(':');
      const sizes: number[] = [];
      for (const prefix of listDir(join(root, 'blobs', algorithm))) {
        const data = join(root, 'blobs', algorithm, prefix, hex, 'data');
        if (existsSync(data)) sizes.push(statSync(data).size);
      }
      return sizes;
    },
    async uploadBytes(id) {
      const dir = join(root, 'uploads', id);
      if (!existsSync(dir)) return undefined;
      const parts = join(dir, 'parts');
      return listDir(parts).reduce((n, name) => n + (statSync(join(parts, name), { throwIfNoEntry: false })?.size ?? 0), 0);
    },
    async uploads() {
      return listDir(join(root, 'uploads'));
    },
  };
}

/** A {@link StorageProbe} of the s3 driver under `rootDirectory` of the test bucket. */
export function s3Probe(rootDirectory: string): StorageProbe {
  const options = testS3Options(rootDirectory);
  const storage = new S3BlobStorage(options);
  const minio = testMinioClient();
  const root = `${rootDirectory.replace(/\/+$/, '')}/`;
  return {
    async blobCopies(digest) {
      const stat = await storage.statBlob(digest);
      return stat ? [stat.size] : [];
    },
    async uploadBytes(id) {
      const prefix = root + uploadPrefix(id);
      let found = false;
      let bytes = 0;
      for await (const item of minio.listObjectsV2(options.bucket, prefix, true)) {
        found = true;
        if (item.name?.startsWith(`${prefix}parts/`)) bytes += item.size;
      }
      // Unfinished multipart uploads (a write in progress, or a dead writer's): `keys()` lists
      // the bucket's (MinIO lists no shorter prefix than an exact key), their sizes by exact key.
      for (const key of await storage.keys()) {
        if (!key.startsWith(`multipart:${uploadPrefix(id)}`)) continue;
        found = true;
        try {
          for await (const upload of minio.listIncompleteUploads(options.bucket, root + key.slice('multipart:'.length), true)) bytes += upload.size;
        } catch {
          // It completed or was aborted since it was listed.
        }
      }
      return found ? bytes : undefined;
    },
    async uploads() {
      const ids: string[] = [];
      for await (const upload of storage.listUploads()) ids.push(upload.id);
      return ids;
    },
  };
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Whether a writer holds upload session `id`'s lease now (by the database's clock). */
export async function leaseHeld(databaseUrl: string, id: string): Promise<boolean> {
  return withDb(databaseUrl, async (db) => {
    const { rows } = await db.query('SELECT lease_until > now() AS held FROM upload_sessions WHERE id = $1', [id]);
    return rows[0]?.held === true;
  });
}

/** A gateway URL whose blob requests all reach one blob-upload process, to kill that one mid-request. */
export interface KillSetup {
  url: string;
  victim: LadingProcess;
  /** Whether another blob-upload process serves the target's URL while the victim is down. */
  othersServe: boolean;
  /** Starts the (killed) victim again in place, as a supervisor would, and stops what was started for the setup. */
  restart(): Promise<void>;
}

/**
 * A split deployment as the robustness cases drive it: on the filesystem with one process per
 * app, or replicated (two of each service behind balancers) on MinIO.
 */
export interface RobustnessTarget {
  /** The URL clients use. */
  url: string;
  /** Whether consecutive requests to `url` may reach different blob-upload processes. */
  spreadsRequests: boolean;
  databaseUrl: string;
  storage: StorageProbe;
  /** The stack's processes now running (for health checks). */
  processes(): LadingProcess[];
  /** Starts one more process of `app` on the stack's database, storage and secret; it stops with the stack. */
  startExtra(app: 'gateway' | 'blob-upload' | 'manifests', env?: Record<string, string>): Promise<LadingProcess>;
  /** Takes down the blob-upload process that served `method path` and starts it again in place. */
  restartBlobUploadThatServed(how: Takedown, method: string, path: string): Promise<void>;
  /** Two gateway URLs that reach two different blob-upload processes; `close` stops what was started for them. */
  twoBlobUploads(): Promise<{ urls: [string, string]; close(): Promise<void> }>;
  killSetup(): Promise<KillSetup>;
  stop(): Promise<void>;
}

/** The split stack on the filesystem, one process per app; extra processes make the second blob-upload. */
export async function splitFilesystemTarget(): Promise<RobustnessTarget> {
  const stack = await startSplit();
  return {
    url: stack.url,
    spreadsRequests: false,
    databaseUrl: stack.databaseUrl,
    storage: filesystemProbe(stack.dataDir),
    processes: () => Object.values(stack.apps),
    startExtra: (app, env) => stack.startExtra(app, env),
    restartBlobUploadThatServed: async (how) => void (await restartInPlace(stack, 'blob-upload', how)),
    async twoBlobUploads() {
      // A second gateway routes to a second blob-upload: the two share database and storage.
      const bu2 = await stack.startExtra('blob-upload');
      const gw2 = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: bu2.url });
      return { urls: [stack.url, gw2.url], close: async () => void (await Promise.all([gw2.stop(), bu2.stop()])) };
    },
    async killSetup() {
      return {
        url: stack.url,
        victim: stack.apps['blob-upload'],
        othersServe: false,
        restart: async () => void (await restartInPlace(stack, 'blob-upload', 'sigkill')),
      };
    },
    stop: () => stack.stop(),
  };
}

/**
 * The replicated split stack (two processes each of gateway, blob-upload and manifests behind
 * balancers) on MinIO, blob GETs streamed by the registry (redirects off: these cases read the
 * bytes a blob-upload replica serves; the redirects are the conformance and client runs' part).
 * A case that needs a given blob-upload process goes through an extra gateway wired straight
 * to that replica; everything else goes through the balancers.
 */
export async function replicatedS3Target(): Promise<RobustnessTarget & { stack: ReplicatedStack }> {
  const stack = await startReplicated({ replicas: 2, storage: 's3', env: { LADING_STORAGE_REDIRECT_DISABLE: 'true' } });
  if (stack.storage.driver !== 's3') throw new Error('expected the s3 driver');
  const pinnedTo = (replica: number) =>
    stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: stack.replicas['blob-upload'][replica].url });
  return {
    stack,
    url: stack.url,
    spreadsRequests: true,
    databaseUrl: stack.databaseUrl,
    storage: s3Probe(stack.storage.rootDirectory),
    processes: () => stack.processes(),
    startExtra: (app, env) => stack.startExtra(app, env),
    async restartBlobUploadThatServed(how, method, path) {
      const replicas = stack.replicas['blob-upload'];
      const served = () => replicas.findIndex((p) => servedRequests(p).some((r) => r.method === method && r.path === path));
      // The access log line is written when the response finishes and reaches us through the
      // process's stdout pipe: it may come a moment after the client got its answer.
      let index = served();
      for (let i = 0; index < 0 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        index = served();
      }
      if (index < 0) throw new Error(`no blob-upload replica served ${method} ${path}`);
      await stack.restart('blob-upload', index, how);
    },
    async twoBlobUploads() {
      const gateways = await Promise.all([pinnedTo(0), pinnedTo(1)]);
      return { urls: [gateways[0].url, gateways[1].url], close: async () => void (await Promise.all(gateways.map((g) => g.stop()))) };
    },
    async killSetup() {
      const gateway = await pinnedTo(0);
      return {
        url: gateway.url,
        victim: stack.replicas['blob-upload'][0],
        othersServe: true,
        async restart() {
          await stack.restart('blob-upload', 0, 'sigkill');
          await gateway.stop();
        },
      };
    },
    stop: () => stack.stop(),
  };
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
