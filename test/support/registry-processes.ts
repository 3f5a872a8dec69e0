import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

const ROOT = resolve(__dirname, '../..');
const LADING = join(ROOT, 'scripts/lading.js');

/** A Lading process started by a test. */
export interface LadingProcess {
  app: string;
  url: string;
  proc: ChildProcess;
  /** Output so far, for failure messages. */
  log(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (no shutdown hooks) and wait for exit. */
  kill9(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `lading serve [app]` with `env` and waits until it answers `/healthz/<waitFor>` with 200: `ready` by
 * default, `live` for a process that is up while a backend it reports on is not.
 */
export async function startLading(app: string | undefined, env: Record<string, string>, port: number, waitFor: 'ready' | 'live' = 'ready'): Promise<LadingProcess> {
  return startNode([LADING, 'serve', ...(app ? [app] : [])], app ?? 'embedded', env, port, waitFor);
}

/**
 * Starts `app` by its own entry point, `node dist/apps/<app>/src/main.js` (built first if stale), as
 * {@link startLading} starts `lading serve <app>`.
 */
export async function startAppEntryPoint(app: string, env: Record<string, string>, port: number, waitFor: 'ready' | 'live' = 'ready'): Promise<LadingProcess> {
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.js')], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building dist/ failed:\n${build.stderr}`);
  return startNode([join(ROOT, 'dist/apps', app, 'src/main.js')], app, env, port, waitFor);
}

async function startNode(args: string[], app: string, env: Record<string, string>, port: number, waitFor: 'ready' | 'live'): Promise<LadingProcess> {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, LADING_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((ok) => proc.once('exit', () => ok()));
  const url = `http://127.0.0.1:${port}`;
  const p: LadingProcess = {
    app,
    url,
    proc,
    log: () => output,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`lading ${p.app} exited with ${proc.exitCode}:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz/${waitFor}`);
      if (r.status === 200) return p;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await p.kill9();
      throw new Error(`lading ${p.app} not ${waitFor} in 60s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What a `lading` command run by {@link runLading} did. */
export interface LadingRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Both, interleaved as they came. */
  output: string;
}

/**
 * Runs `lading <args…>` with exactly the LADING_* settings of `env` (none inherited) until it
 * exits by itself: its exit code and output. Killed, and an error thrown, if it still runs after
 * `timeoutMs`.
 */
export async function runLading(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<LadingRun> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LADING_')));
  const proc = spawn(process.execPath, [LADING, ...args], {
    cwd: ROOT,
    env: { ...inherited, LADING_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: LadingRun = { code: null, stdout: '', stderr: '', output: '' };
  proc.stdout!.on('data', (d) => ((run.stdout += d), (run.output += d)));
  proc.stderr!.on('data', (d) => ((run.stderr += d), (run.output += d)));
  const exited = new Promise<number | null>((ok) => proc.once('close', (code) => ok(code)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  run.code = await exited;
  clearTimeout(timer);
  if (proc.signalCode === 'SIGKILL') throw new Error(`lading ${args.join(' ')} still ran after ${timeoutMs} ms:\n${run.output}`);
  return run;
}

/** Runs `lading serve <app>` as {@link runLading} does, as on a start it refuses: its exit code and output. */
export async function serveUntilExit(app: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const { code, output } = await runLading(['serve', app], env, timeoutMs);
  return { code, output };
}

/** The embedded registry as its own process, data in a new temp folder unless given. */
export async function startEmbedded(env: Record<string, string> = {}, dataDir?: string): Promise<LadingProcess & { dataDir: string }> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'lading-embedded-'));
  const port = await freePort();
  const p = await startLading(undefined, { LADING_DATA_DIR: dir, LADING_HTTP_ADDR: `127.0.0.1:${port}`, ...env }, port);
  return { ...p, dataDir: dir };
}

/** A fresh, empty PostgreSQL database on the test server; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.LADING_TEST_PG_URL;
  if (!base) throw new Error('LADING_TEST_PG_URL is not set: run `eval "$(scripts/services env)"` after `scripts/services start`');
  const name = `lading_t_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** The split deployment: gateway, blob-upload and manifests (plus notifications and gc-worker) as processes on PostgreSQL. */
export interface SplitStack {
  url: string;
  dataDir: string;
  databaseUrl: string;
  env: Record<string, string>;
  apps: Record<string, LadingProcess>;
  /** Starts another process of `app` sharing the stack's database, storage and secret. */
  /** One more process of `app` (see {@link startLading} for `waitFor`). */
  startExtra(app: string, extraEnv?: Record<string, string>, waitFor?: 'ready' | 'live'): Promise<LadingProcess>;
  stop(): Promise<void>;
}

/** One app of a split deployment, ready to start: its port and its whole LADING_* environment. */
export interface SplitApp {
  app: string;
  port: number;
  env: Record<string, string>;
}

/** The split deployment's apps, in the order they must start (the first migrates the schema). */
export const SPLIT_APPS = ['blob-upload', 'manifests', 'gateway', 'notifications', 'gc-worker'] as const;

/** The variable that sets where `app` listens: `LADING_HTTP_ADDR` for the gateway, `LADING_SERVICES_<APP>_ADDR` else. */
export function splitAddrKey(app: string): string {
  return app === 'gateway' ? 'LADING_HTTP_ADDR' : `LADING_SERVICES_${app.replace('-', '').toUpperCase()}_ADDR`;
}

/**
 * What a split deployment needs before its processes start: a new database on the test
 * PostgreSQL, a temp data folder, a shared secret, and a port and environment per app (in
 * {@link SPLIT_APPS} order; `env` is laid over the shared settings).
 */
export async function planSplit(env: Record<string, string> = {}): Promise<{
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  dataDir: string;
  env: Record<string, string>;
  apps: SplitApp[];
}> {
  const db = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'lading-split-'));
  const ports = await Promise.all(SPLIT_APPS.map(() => freePort()));
  const port = (app: string) => ports[SPLIT_APPS.indexOf(app as (typeof SPLIT_APPS)[number])];
  const shared: Record<string, string> = {
    LADING_DATABASE_URL: db.url,
    LADING_DATA_DIR: dataDir,
    LADING_HTTP_SECRET: randomBytes(24).toString('hex'),
    LADING_SERVICES_BLOBUPLOAD_URL: `http://127.0.0.1:${port('blob-upload')}`,
    LADING_SERVICES_MANIFESTS_URL: `http://127.0.0.1:${port('manifests')}`,
    ...env,
  };
  const apps = SPLIT_APPS.map((app) => ({
    app,
    port: port(app),
    env: { ...shared, [splitAddrKey(app)]: `127.0.0.1:${port(app)}` },
  }));
  return { db, dataDir, env: shared, apps };
}

/** Starts the five apps as separate processes against a new database on the test PostgreSQL. */
export async function startSplit(options: { env?: Record<string, string>; withWorkers?: boolean } = {}): Promise<SplitStack> {
  const { db, dataDir, env, apps: plan } = await planSplit(options.env);
  const workers: readonly string[] = ['notifications', 'gc-worker'];
  const apps: Record<string, LadingProcess> = {};
  // Services first (the first one migrates the schema), then the gateway.
  for (const a of plan) {
    if (options.withWorkers === false && workers.includes(a.app)) continue;
    apps[a.app] = await startLading(a.app, a.env, a.port);
  }
  const extras: LadingProcess[] = [];
  return {
    url: apps['gateway'].url,
    dataDir,
    databaseUrl: db.url,
    env,
    apps,
    async startExtra(app, extraEnv = {}, waitFor = 'ready') {
      const port = await freePort();
      const p = await startLading(app, { ...env, [splitAddrKey(app)]: `127.0.0.1:${port}`, ...extraEnv }, port, waitFor);
      extras.push(p);
      return p;
    },
    async stop() {
      await Promise.all([...extras, ...Object.values(apps)].map((p) => p.stop()));
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
