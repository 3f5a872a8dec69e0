/**
 * The registries under test, each a set of child processes on free 127.0.0.1 ports with a fresh
 * temp data directory and, on S3, a fresh root directory in the test bucket (purged at stop):
 * Lading embedded (`lading serve`), Lading split (`lading serve <app>` for each of the five apps,
 * on the test PostgreSQL) and the reference registry (CNCF Distribution, Debian's
 * `docker-registry`). A registry counts as ready when `GET /v2/` answers 200 (a split service:
 * `/healthz/ready`).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createTestDatabase, freePort, planSplit } from '../test/support/registry-processes';
import { purgeS3Prefix, s3RegistryEnv, testS3Options } from '../test/support/s3';
import { processTree } from './proc-stats';
import { MiB } from './stats';

/** The repository root (bench/..). */
export const ROOT = resolve(__dirname, '..');

/** Where Debian's `docker-registry` package installs the reference registry. */
export const REFERENCE_BIN = '/usr/bin/docker-registry';

/** The S3 part size both registries write with: the reference's default `chunksize`, and Lading's. */
export const S3_CHUNK_SIZE = 10 * MiB;

const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_BYTES = 64 * 1024;

/** Where a registry keeps blobs: a temp directory, or its own root directory in the test bucket. */
export type BenchStorage =
  | { driver: 'filesystem' }
  | {
      driver: 's3';
      /** A fresh key prefix in the test bucket (`LADING_TEST_S3_BUCKET`), removed when the registry stops. */
      rootDirectory: string;
      /** Whether blob GETs answer 307 to a presigned URL (`storage.redirect.disable: false`). */
      redirect: boolean;
    };

/** A running registry the workloads drive. */
export interface Target {
  /** Its column in the report (`Lading`, `split`, `embedded`, `reference`). */
  name: string;
  /** Base URL, `http://127.0.0.1:<port>`: the one address clients use (the gateway, in split mode). */
  url: string;
  /** Its processes by app (one app for embedded Lading and the reference, five for split), for memory and CPU. */
  apps(): Record<string, number[]>;
  /** All its processes. */
  pids(): number[];
  /** The PostgreSQL database it uses, if any (its backends' CPU is counted for it). */
  database?: string;
  /** Its temp data directory (Lading's filesystem storage is `<dataDir>/storage`). */
  dataDir: string;
  /** The last output of the servers, for failure messages. */
  log(): string;
  /** Stops the processes (SIGTERM, SIGKILL after a grace period), removes its data (temp directory, database, bucket prefix). */
  stop(): Promise<void>;
}

/** One server process of a target. */
interface Server {
  app: string;
  url: string;
  pids(): number[];
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<Server>();
const tempDirs = new Set<string>();
/** Removals still to do (a database to drop, a bucket prefix to purge), by what they remove. */
const cleanups = new Map<string, () => Promise<void>>();

/**
 * Stops every server started and not yet stopped (also ones still starting), removes every temp
 * directory made and runs every cleanup still due: for cleanup on failure or a signal.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop()));
  for (const dir of tempDirs) removeTempDir(dir);
  await Promise.all([...cleanups.keys()].map(runCleanup));
}

/** Registers a removal to run when the target stops (or at `stopAll`). */
function addCleanup(what: string, removal: () => Promise<void>): string {
  cleanups.set(what, removal);
  return what;
}

async function runCleanup(what: string): Promise<void> {
  const removal = cleanups.get(what);
  cleanups.delete(what);
  try {
    await removal?.();
  } catch (e) {
    console.error(`[bench] cannot remove ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A target made of `servers` (the first is what clients talk to), with its temp directory and removals. */
function makeTarget(name: string, servers: Server[], dir: string, removals: string[], database?: string): Target {
  let stopped: Promise<void> | undefined;
  const apps = () => Object.fromEntries(servers.map((s) => [s.app, s.pids()]));
  return {
    name,
    url: servers[0].url,
    apps,
    pids: () => Object.values(apps()).flat(),
    database,
    dataDir: dir,
    log: () => servers.map((s) => (servers.length > 1 ? `--- ${s.app}\n${s.log()}` : s.log())).join('\n'),
    stop: () =>
      (stopped ??= (async () => {
        await Promise.all(servers.map((s) => s.stop()));
        removeTempDir(dir);
        for (const what of removals) await runCleanup(what);
      })()),
  };
}

/**
 * Runs `start`, which pushes every server it starts onto `servers`; on failure stops those,
 * removes the temp directory and runs the removals registered so far.
 */
async function startTarget(
  dir: string,
  servers: Server[],
  removals: string[],
  start: () => Promise<Target>,
): Promise<Target> {
  try {
    return await start();
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    removeTempDir(dir);
    for (const what of removals) await runCleanup(what);
    throw e;
  }
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

const LADING = join(ROOT, 'scripts/lading.js');

/** The LADING_* settings of `storage`: none for the filesystem (under the data directory), the s3 driver's else. */
function ladingStorageEnv(storage: BenchStorage): Record<string, string> {
  if (storage.driver === 'filesystem') return {};
  return {
    ...s3RegistryEnv(storage.rootDirectory, S3_CHUNK_SIZE),
    LADING_STORAGE_REDIRECT_DISABLE: String(!storage.redirect),
  };
}

/** Registers the purge of an S3 target's root directory; nothing for the filesystem. */
function storageRemovals(storage: BenchStorage): string[] {
  if (storage.driver === 'filesystem') return [];
  const root = storage.rootDirectory;
  return [addCleanup(`s3://${process.env.LADING_TEST_S3_BUCKET}/${root}`, () => purgeS3Prefix(root))];
}

/** A new database on the test PostgreSQL, dropped when the target stops: its URL, name and removal. */
async function benchDatabase(): Promise<{ url: string; name: string; removal: string }> {
  const db = await createTestDatabase();
  const name = new URL(db.url).pathname.slice(1);
  return { url: db.url, name, removal: addCleanup(`database ${name}`, db.drop) };
}

/**
 * Starts Lading in one process (`lading serve`), data in a new temp directory; blobs where
 * `storage` says, metadata in PGlite under the data directory or, with `database: 'postgres'`,
 * in a new database on the test PostgreSQL. The database is created first by `lading migrate`
 * in a process of its own: PGlite's first boot runs initdb, whose WebAssembly memory stays
 * resident in the process that ran it (several hundred MB), and a registry serves from an
 * existing database for all but its first minute. `env` is laid over the settings of both
 * (`OTEL_*` for tracing, say).
 */
export async function startLadingEmbedded(
  name: string,
  storage: BenchStorage = { driver: 'filesystem' },
  database: 'pglite' | 'postgres' = 'pglite',
  env: Record<string, string> = {},
): Promise<Target> {
  const dir = makeTempDir('lading-bench-lading-');
  const servers: Server[] = [];
  const removals = storageRemovals(storage);
  return startTarget(dir, servers, removals, async () => {
    const port = await freePort();
    const settings: Record<string, string> = {
      LADING_DATA_DIR: dir,
      LADING_HTTP_ADDR: `127.0.0.1:${port}`,
      LADING_LOG_LEVEL: 'warn',
      ...ladingStorageEnv(storage),
      ...env,
    };
    let dbName: string | undefined;
    if (database === 'postgres') {
      const db = await benchDatabase();
      removals.push(db.removal);
      settings.LADING_DATABASE_URL = db.url;
      dbName = db.name;
    }
    await new Promise<void>((ok, fail) =>
      execFile(
        process.execPath,
        [LADING, 'migrate'],
        { cwd: ROOT, env: { ...process.env, ...settings }, timeout: READY_TIMEOUT_MS },
        (e, _out, err) => (e ? fail(new Error(`lading migrate failed: ${e.message}\n${err}`)) : ok()),
      ),
    );
    servers.push(await startServer('lading', port, process.execPath, [LADING, 'serve'], settings));
    return makeTarget(name, servers, dir, removals, dbName);
  });
}

/**
 * Starts Lading split: blob-upload (which migrates the new database on the test PostgreSQL),
 * manifests, the gateway, notifications and gc-worker, each `lading serve <app>` in its own
 * process, one after the other, sharing a temp data directory, the database and `storage`;
 * `env` is laid over the settings of every app.
 */
export async function startLadingSplit(
  name: string,
  storage: BenchStorage,
  env: Record<string, string> = {},
): Promise<Target> {
  const plan = await planSplit({ LADING_LOG_LEVEL: 'warn', ...ladingStorageEnv(storage), ...env });
  const dbName = new URL(plan.db.url).pathname.slice(1);
  const servers: Server[] = [];
  const removals = [...storageRemovals(storage), addCleanup(`database ${dbName}`, plan.db.drop)];
  tempDirs.add(plan.dataDir);
  return startTarget(plan.dataDir, servers, removals, async () => {
    for (const app of plan.apps) {
      const readyPath = app.app === 'gateway' ? '/v2/' : '/healthz/ready';
      servers.push(
        await startServer(app.app, app.port, process.execPath, [LADING, 'serve', app.app], app.env, readyPath),
      );
    }
    // The gateway first: it is the target's address.
    servers.sort((a, b) => Number(b.app === 'gateway') - Number(a.app === 'gateway'));
    return makeTarget(name, servers, plan.dataDir, removals, dbName);
  });
}

/** The reference registry's `storage` driver section for `storage` (filesystem under `dir`). */
export function referenceStorageYaml(storage: BenchStorage, dir: string): string[] {
  if (storage.driver === 'filesystem') return ['  filesystem:', `    rootdirectory: ${join(dir, 'data')}`];
  const o = testS3Options(storage.rootDirectory);
  const endpoint = new URL(o.regionEndpoint!);
  // Distribution 2.8's s3 driver has no `forcepathstyle`: a `regionendpoint` implies path-style requests.
  return [
    '  s3:',
    `    accesskey: ${JSON.stringify(o.accessKey)}`,
    `    secretkey: ${JSON.stringify(o.secretKey)}`,
    `    region: ${JSON.stringify(o.region)}`,
    `    regionendpoint: ${JSON.stringify(o.regionEndpoint)}`,
    `    bucket: ${JSON.stringify(o.bucket)}`,
    `    rootdirectory: ${JSON.stringify(storage.rootDirectory)}`,
    `    secure: ${endpoint.protocol === 'https:'}`,
    '    v4auth: true',
    `    chunksize: ${S3_CHUNK_SIZE}`,
    '  redirect:',
    `    disable: ${!storage.redirect}`,
  ];
}

/**
 * Starts the reference registry with a generated config: `storage` (filesystem in a new temp
 * directory, or the s3 driver on the test MinIO), deletes enabled, no auth, errors-only logging,
 * access log off (Lading at `warn` logs no requests either), and the in-memory blob descriptor
 * cache that the stock config of the upstream image and of the Debian package both enable;
 * `extraConfig` are more top-level YAML lines (a `notifications:` section, say).
 */
export async function startReference(
  bin: string,
  storage: BenchStorage = { driver: 'filesystem' },
  extraConfig: string[] = [],
): Promise<Target> {
  const dir = makeTempDir('lading-bench-reference-');
  const servers: Server[] = [];
  const removals = storageRemovals(storage);
  return startTarget(dir, servers, removals, async () => {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        ...referenceStorageYaml(storage, dir),
        '  delete:',
        '    enabled: true',
        '  cache:',
        '    blobdescriptor: inmemory',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        ...extraConfig,
        '',
      ].join('\n'),
    );
    // Without the machine's AWS_* settings: the config says everything, and the AWS SDK of 2.8 cannot
    // use an AWS_CA_BUNDLE with its HTTP transport (it panics at start).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    servers.push(await startServer('registry', port, bin, ['serve', config], env, '/v2/', false));
    return makeTarget('reference', servers, dir, removals);
  });
}

/** `docker-registry --version`, or why it cannot be run. */
export function referenceVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error)
    throw new Error(
      `cannot run the reference registry ${bin}: ${r.error.message} (install it: apt-get install docker-registry)`,
    );
  return r.stdout.trim().split(/\s+/).slice(1).join(' ');
}

async function startServer(
  app: string,
  port: number,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  readyPath = '/v2/',
  inherit = true,
): Promise<Server> {
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: inherit ? { ...process.env, ...env } : env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-LOG_TAIL_BYTES);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let spawnError: Error | undefined;
  const exited = new Promise<void>((ok) => {
    proc.once('exit', () => ok());
    proc.once('error', (e) => {
      spawnError = e;
      ok();
    });
  });
  let stopped: Promise<void> | undefined;
  const server: Server = {
    app,
    url: `http://127.0.0.1:${port}`,
    pids: () => (running(proc) ? processTree(proc.pid!) : []),
    log: () => tail,
    stop: () =>
      (stopped ??= (async () => {
        await stopProcess(proc, exited);
        live.delete(server);
      })()),
  };
  live.add(server);
  try {
    await waitReady(server, readyPath, proc, () => spawnError);
    return server;
  } catch (e) {
    await server.stop();
    throw e;
  }
}

async function waitReady(
  server: Server,
  readyPath: string,
  proc: ChildProcess,
  spawnError: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const error = spawnError();
    if (error) throw new Error(`cannot start ${server.app}: ${error.message}`);
    if (!running(proc))
      throw new Error(
        `${server.app} exited with ${proc.exitCode ?? proc.signalCode} before it was ready:\n${server.log()}`,
      );
    try {
      const res = await fetch(`${server.url}${readyPath}`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${server.app} not ready in ${READY_TIMEOUT_MS / 1000}s:\n${server.log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function running(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (!running(proc)) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => running(proc) && proc.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
