import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, freePort, startLading, type LadingProcess } from './registry-processes';
import { purgeS3Root, s3RegistryEnv } from './s3';
import { startTcpBalancer, type TcpBalancer } from './tcp-balancer';

/** The apps that run as several replicas behind a balancer. */
export const REPLICATED_APPS = ['gateway', 'blob-upload', 'manifests'] as const;
export type ReplicatedApp = (typeof REPLICATED_APPS)[number];

/** The apps that run once. */
export type SingletonApp = 'notifications' | 'gc-worker';

/** Where a replicated stack keeps blob bytes. */
export type StackStorage = { driver: 's3'; rootDirectory: string } | { driver: 'filesystem'; dataDir: string };

/**
 * The split deployment as a cluster runs it: N processes each of gateway, blob-upload and
 * manifests, one notifications and one gc-worker, on one PostgreSQL database and one storage.
 * Clients reach the gateways through a round-robin TCP balancer, and the gateways reach each
 * service's replicas through one balancer per service, as a Kubernetes Service does (per
 * connection). Every process writes an access line (JSON) for each request it serves, so a test
 * can tell which replica served what.
 */
export interface ReplicatedStack {
  /** The URL clients use: the balancer in front of the gateways. */
  url: string;
  databaseUrl: string;
  storage: StackStorage;
  /** The environment every process shares (database, storage, secret, service URLs). */
  env: Record<string, string>;
  /** The running replicas of each app, in balancer order; `restart` replaces an entry. */
  replicas: Record<ReplicatedApp, LadingProcess[]>;
  workers: Record<SingletonApp, LadingProcess>;
  balancers: Record<ReplicatedApp, TcpBalancer>;
  /** Every process of the stack now running (replicas and workers). */
  processes(): LadingProcess[];
  /**
   * Takes replica `index` of `app` down (SIGTERM, or SIGKILL: no shutdown hooks) and starts a
   * new process in its place, on the same address and environment, as a supervisor would;
   * resolves once it is ready. The balancer keeps sending it connections throughout.
   */
  restart(app: ReplicatedApp, index: number, how: 'sigterm' | 'sigkill'): Promise<LadingProcess>;
  /**
   * Starts one more process of `app` outside the balancers, on the stack's database, storage and
   * secret (and its service URLs unless `extraEnv` says otherwise); it stops with the stack.
   */
  startExtra(app: ReplicatedApp, extraEnv?: Record<string, string>): Promise<LadingProcess>;
  /** Every process's output, headed by its name, for failure messages. */
  log(): string;
  /** Stops every process and balancer, drops the database and removes what storage holds. */
  stop(): Promise<void>;
}

/** Options of `startReplicated`. */
export interface ReplicatedStackOptions {
  /** Processes of each of gateway, blob-upload and manifests; default 2. */
  replicas?: number;
  /** `s3` (the test MinIO, a fresh root directory; the default) or `filesystem` (a temp folder). */
  storage?: 's3' | 'filesystem';
  /** More `LADING_*` settings for every process. */
  env?: Record<string, string>;
}

const ADDR_KEY: Record<ReplicatedApp | SingletonApp, string> = {
  gateway: 'LADING_HTTP_ADDR',
  'blob-upload': 'LADING_SERVICES_BLOBUPLOAD_ADDR',
  manifests: 'LADING_SERVICES_MANIFESTS_ADDR',
  notifications: 'LADING_SERVICES_NOTIFICATIONS_ADDR',
  'gc-worker': 'LADING_SERVICES_GCWORKER_ADDR',
};

/** Starts a {@link ReplicatedStack} on a new database of the test PostgreSQL. */
export async function startReplicated(options: ReplicatedStackOptions = {}): Promise<ReplicatedStack> {
  const count = options.replicas ?? 2;
  const db = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'lading-replicated-'));
  const storage: StackStorage =
    (options.storage ?? 's3') === 's3'
      ? { driver: 's3', rootDirectory: `replicated/${randomUUID()}` }
      : { driver: 'filesystem', dataDir };
  const env: Record<string, string> = {
    LADING_DATABASE_URL: db.url,
    LADING_DATA_DIR: dataDir,
    LADING_HTTP_SECRET: randomBytes(24).toString('hex'),
    LADING_LOG_LEVEL: 'debug',
    ...(storage.driver === 's3' ? s3RegistryEnv(storage.rootDirectory) : {}),
    ...options.env,
  };
  const start = (app: ReplicatedApp | SingletonApp, port: number) =>
    startLading(app, { ...env, [ADDR_KEY[app]]: `127.0.0.1:${port}` }, port);
  const started: LadingProcess[] = [];
  const tracked = async (p: Promise<LadingProcess>) => {
    const process = await p;
    started.push(process);
    return process;
  };
  /**
   * Starts `app` on a free port. The port is free when picked, not yet taken: another process on
   * the machine may take it first, so a start refused with EADDRINUSE tries another one.
   */
  const startOnFreePort = async (app: ReplicatedApp | SingletonApp): Promise<LadingProcess> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await tracked(start(app, await freePort()));
      } catch (e) {
        if (attempt === 3 || !String((e as Error).message).includes('EADDRINUSE')) throw e;
      }
    }
  };
  const replicas = {} as Record<ReplicatedApp, LadingProcess[]>;
  const workers = {} as Record<SingletonApp, LadingProcess>;
  const balancers = {} as Record<ReplicatedApp, TcpBalancer>;
  const balance = async (app: ReplicatedApp) => {
    balancers[app] = await startTcpBalancer(replicas[app].map((p) => p.url));
    return balancers[app].url;
  };
  const replicasOf = (app: ReplicatedApp) => Promise.all(Array.from({ length: count }, () => startOnFreePort(app)));
  const stop = async () => {
    // Every process ever started, replaced ones included (stopping an exited one is a no-op).
    await Promise.all(started.map((p) => p.stop()));
    await Promise.all(Object.values(balancers).map((b) => b.stop()));
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
    if (storage.driver === 's3') await purgeS3Root(storage.rootDirectory);
  };
  try {
    // Services first (they migrate the schema, one at a time under a lock), then the balancers
    // in front of them, which the gateways are given; the gateways' balancer last.
    [replicas['blob-upload'], replicas.manifests] = await Promise.all([replicasOf('blob-upload'), replicasOf('manifests')]);
    env.LADING_SERVICES_BLOBUPLOAD_URL = await balance('blob-upload');
    env.LADING_SERVICES_MANIFESTS_URL = await balance('manifests');
    [replicas.gateway, workers.notifications, workers['gc-worker']] = await Promise.all([
      replicasOf('gateway'),
      startOnFreePort('notifications'),
      startOnFreePort('gc-worker'),
    ]);
    await balance('gateway');
  } catch (e) {
    await stop();
    throw e;
  }

  const processes = () => [...REPLICATED_APPS.flatMap((app) => replicas[app]), ...Object.values(workers)];
  return {
    url: balancers.gateway.url,
    databaseUrl: db.url,
    storage,
    env,
    replicas,
    workers,
    balancers,
    processes,
    async restart(app, index, how) {
      const old = replicas[app][index];
      await (how === 'sigkill' ? old.kill9() : old.stop());
      const fresh = await tracked(start(app, Number(new URL(old.url).port)));
      replicas[app][index] = fresh;
      return fresh;
    },
    async startExtra(app, extraEnv = {}) {
      const port = await freePort();
      return tracked(startLading(app, { ...env, [ADDR_KEY[app]]: `127.0.0.1:${port}`, ...extraEnv }, port));
    },
    log: () =>
      processes()
        .map((p) => `--- ${p.app} ${p.url}\n${p.log()}`)
        .join('\n'),
    stop,
  };
}

/** A request as a process's access log records it. */
export interface ServedRequest {
  method: string;
  path: string;
  /** The status, or `-` when the connection closed before the answer was complete. */
  status: string;
}

/** The /v2 requests `p` served, from its access log (JSON lines with `context: "Access"`; health checks left out). */
export function servedRequests(p: LadingProcess): ServedRequest[] {
  const served: ServedRequest[] = [];
  for (const line of p.log().split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { context?: unknown; method?: unknown; url?: unknown; status?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.context !== 'Access' || typeof entry.url !== 'string' || !entry.url.startsWith('/v2')) continue;
    served.push({ method: String(entry.method), path: entry.url, status: String(entry.status) });
  }
  return served;
}

/** What each replica of each app served: all its /v2 requests, and the writes among them. */
export type ReplicaSpread = Record<ReplicatedApp, { requests: number; writes: number }[]>;

/**
 * Writes are what makes a push: upload POST/PATCH/PUT at blob-upload, manifest PUTs at
 * manifests, and at a gateway any request with a body.
 */
function isWrite(app: ReplicatedApp, r: ServedRequest): boolean {
  if (app === 'blob-upload') return r.path.includes('/blobs/uploads/') && ['POST', 'PATCH', 'PUT'].includes(r.method);
  if (app === 'manifests') return r.method === 'PUT' && r.path.includes('/manifests/');
  return ['POST', 'PATCH', 'PUT'].includes(r.method);
}

/** Requests and writes served per replica of each app of `stack` so far. */
export function replicaSpread(stack: Pick<ReplicatedStack, 'replicas'>): ReplicaSpread {
  const spread = {} as ReplicaSpread;
  for (const app of REPLICATED_APPS) {
    spread[app] = stack.replicas[app].map((p) => {
      const served = servedRequests(p);
      return { requests: served.length, writes: served.filter((r) => isWrite(app, r)).length };
    });
  }
  return spread;
}

/** `gateway 120/98 (writes 40/37), blob-upload …`: a spread on one line, for logs. */
export function describeSpread(spread: ReplicaSpread): string {
  return REPLICATED_APPS.map(
    (app) =>
      `${app} ${spread[app].map((r) => r.requests).join('/')} (writes ${spread[app].map((r) => r.writes).join('/')})`,
  ).join(', ');
}

/**
 * The replicas of `apps` that took less than `minShare` of their app's requests or none of its
 * writes, as `blob-upload[1]: 3 of 66 requests, 0 writes`; empty when every replica did its part.
 */
export function idleReplicas(spread: ReplicaSpread, apps: readonly ReplicatedApp[], minShare = 0.2): string[] {
  const idle: string[] = [];
  for (const app of apps) {
    const total = spread[app].reduce((n, r) => n + r.requests, 0);
    spread[app].forEach((r, i) => {
      if (r.requests < minShare * total || r.writes === 0)
        idle.push(`${app}[${i}]: ${r.requests} of ${total} requests, ${r.writes} writes`);
    });
  }
  return idle;
}
