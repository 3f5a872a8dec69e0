/**
 * The workloads, each run against every target in turn. A workload warms up first (not
 * measured), then measures; it returns its metrics as numbers keyed by `Metric.key`.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Pool, type Client, type Dispatcher } from 'undici';
import type { BlobSource, BlobSpec } from './blob-source';
import { OCI_MANIFEST, pullBlob, pushBlob, putManifest, UnexpectedResponseError } from './oci-client';
import { MemoryWatch, readCpuSeconds, type MemoryPeak } from './proc-stats';
import type { Target } from './registries';
import { MB, MiB, GiB, binarySize, mbPerSecond, percentile } from './stats';

/** How big and how long: `full` is what the targets are stated for, `small` is for development. */
export interface Scale {
  name: string;
  /** The large blob pushed and pulled (1 GiB at full scale). */
  bigBlob: number;
  /** A blob pushed and pulled once before the large one, to warm both paths up. */
  warmupBlob: number;
  /** Size and count of the sequential small-blob pushes, and how many of them are warm-up. */
  smallBlob: number;
  smallPushes: number;
  smallWarmups: number;
  /**
   * Manifest GET load: connections, measured seconds, and a warm-up of at least so many seconds
   * and requests (capped at a minute). The warm-up counts requests because Lading's CPU per
   * request halves over its first few thousand (V8 tiers up the JS and PGlite's WebAssembly
   * lazily); the reference, compiled ahead of time, needs none.
   */
  connections: number;
  loadWarmupSeconds: number;
  warmupRequests: number;
  loadSeconds: number;
  /** The image the real-client workload pushes and pulls: layers of this size each. */
  imageLayers: number;
  imageLayerSize: number;
}

/** The scales `BENCH_SCALE` chooses from. */
export const SCALES: Record<string, Scale> = {
  full: {
    name: 'full',
    bigBlob: GiB,
    warmupBlob: 64 * MiB,
    smallBlob: 10 * MiB,
    smallPushes: 30,
    smallWarmups: 3,
    connections: 32,
    loadWarmupSeconds: 2,
    warmupRequests: 5000,
    loadSeconds: 10,
    imageLayers: 8,
    imageLayerSize: 32 * MiB,
  },
  small: {
    name: 'small',
    bigBlob: 64 * MiB,
    warmupBlob: 8 * MiB,
    smallBlob: 10 * MiB,
    smallPushes: 10,
    smallWarmups: 2,
    connections: 32,
    loadWarmupSeconds: 1,
    warmupRequests: 2000,
    loadSeconds: 5,
    imageLayers: 4,
    imageLayerSize: 4 * MiB,
  },
};

/** One number a workload reports, and which way is better. */
export interface Metric {
  key: string;
  label: string;
  better: 'higher' | 'lower' | 'neither';
  digits: number;
  /** Shown in the summary of ratios (suites with several rounds). */
  headline?: boolean;
}

/** What one target carries between workloads: its HTTP client and the blobs it holds. */
export interface TargetState {
  client: Client;
  /** The large blob pushed by `push-big`, pulled by `pull-big`. */
  bigBlob?: BlobSpec;
  warmupBlob?: BlobSpec;
  /** How each large transfer's peak RSS was measured. */
  memoryMethods: Set<MemoryPeak['method']>;
}

/** Everything a workload needs besides its target. */
export interface BenchContext {
  scale: Scale;
  source: BlobSource;
  state(target: Target): TargetState;
  /** The dispatcher for other origins than the registry's: where a blob GET's 307 points. */
  storage: Dispatcher;
  /** Whether every blob GET must answer 307 (redirects on, object storage) rather than 200. */
  blobRedirect: boolean;
  /** The processes that do a target's work besides its own: its PostgreSQL backends and the object store. */
  backends(target: Target): Backends;
}

/** Processes outside a target that work for it; absent when there is none (PGlite, the filesystem). */
export interface Backends {
  database?: number[];
  storage?: number[];
}

/** A workload: what it measures and how. */
export interface Workload {
  id: string;
  title: string;
  description: string;
  metrics: Metric[];
  run(target: Target, ctx: BenchContext): Promise<Record<string, number>>;
}

const BIG_REPO = 'bench/big';
const SMALL_REPO = 'bench/small';
const IMAGE_REPO = 'bench/image';
const IMAGE_TAG = 'bench';

/**
 * Rows for CPU time under `key`: the server's, and (where the target has them) its PostgreSQL
 * backends', the object store's and all three together. Per-app values go in `<key>@<app>`.
 */
export function cpuMetricRows(key: string, label: string, digits: number): Metric[] {
  return [
    { key, label: `server ${label}`, better: 'lower', digits },
    { key: `${key}:db`, label: `PostgreSQL backends ${label}`, better: 'lower', digits },
    { key: `${key}:storage`, label: `MinIO ${label}`, better: 'lower', digits },
    { key: `${key}:system`, label: `server + PostgreSQL + MinIO ${label}`, better: 'lower', digits },
  ];
}

export const transferMetrics: Metric[] = [
  { key: 'throughput', label: 'throughput (MB/s)', better: 'higher', digits: 1, headline: true },
  { key: 'seconds', label: 'duration (s)', better: 'lower', digits: 2 },
  ...cpuMetricRows('serverCpu', 'CPU time (s)', 2),
  { key: 'peakRss', label: 'server peak RSS during transfer (MB)', better: 'lower', digits: 0 },
  { key: 'startRss', label: 'server RSS before transfer (MB)', better: 'lower', digits: 0 },
  { key: 'rssGrowth', label: 'server RSS added by the transfer (MB)', better: 'lower', digits: 0 },
];

/** CPU seconds so far of each process that works for a target, by what it is (`app:<name>`, `db`, `storage`). */
export type CpuSnapshot = Map<string, Map<number, number>>;

/** CPU seconds so far of the target's processes and its backends', read from /proc now. */
export function cpuSnapshot(target: Target, ctx: BenchContext): CpuSnapshot {
  const groups: [string, number[]][] = Object.entries(target.apps()).map(([app, pids]) => [`app:${app}`, pids]);
  const { database, storage } = ctx.backends(target);
  if (database) groups.push(['db', database]);
  if (storage) groups.push(['storage', storage]);
  return new Map(groups.map(([group, pids]) => [group, new Map(pids.map((pid) => [pid, readCpuSeconds(pid) || 0]))]));
}

/**
 * CPU used between two snapshots, times `scale`, as metrics under `key` (see `cpuMetricRows`).
 * Per process: one that appeared in between counts from zero, one that ended in between is lost
 * (a PostgreSQL backend closed by its pool's idle timeout).
 */
export function cpuMetrics(before: CpuSnapshot, after: CpuSnapshot, key: string, scale = 1): Record<string, number> {
  const used = (group: string) => {
    let sum = 0;
    for (const [pid, seconds] of after.get(group) ?? []) sum += seconds - (before.get(group)?.get(pid) ?? 0);
    return sum * scale;
  };
  const apps = [...after.keys()].filter((g) => g.startsWith('app:'));
  const metrics: Record<string, number> = { [key]: apps.reduce((sum, g) => sum + used(g), 0) };
  if (apps.length > 1) for (const g of apps) metrics[`${key}@${g.slice('app:'.length)}`] = used(g);
  let system = metrics[key];
  for (const group of ['db', 'storage']) {
    if (!after.has(group)) continue;
    metrics[`${key}:${group}`] = used(group);
    system += metrics[`${key}:${group}`];
  }
  if (after.has('db') || after.has('storage')) metrics[`${key}:system`] = system;
  return metrics;
}

/** Runs `transfer` while watching the target's memory and CPU; returns the transfer metrics. */
export async function measureTransfer(
  target: Target,
  ctx: BenchContext,
  bytes: number,
  transfer: () => Promise<void>,
): Promise<Record<string, number>> {
  const state = ctx.state(target);
  const watch = new MemoryWatch(() => target.pids());
  const cpu0 = cpuSnapshot(target, ctx);
  watch.start();
  const t0 = performance.now();
  let peak: MemoryPeak;
  try {
    await transfer();
  } finally {
    peak = watch.stop();
  }
  const ms = performance.now() - t0;
  state.memoryMethods.add(peak.method);
  const metrics: Record<string, number> = {
    throughput: mbPerSecond(bytes, ms),
    seconds: ms / 1000,
    ...cpuMetrics(cpu0, cpuSnapshot(target, ctx), 'serverCpu'),
    peakRss: peak.peakRss / MB,
    startRss: peak.startRss / MB,
    rssGrowth: (peak.peakRss - peak.startRss) / MB,
  };
  const apps = Object.entries(target.apps());
  if (apps.length > 1) {
    for (const [app, pids] of apps) {
      metrics[`peakRss@${app}`] = pids.reduce((sum, pid) => sum + (peak.peakByPid.get(pid) ?? 0), 0) / MB;
    }
  }
  return metrics;
}

/** Pulls `blob` and checks what came: its size and digest, and a 307 exactly when redirects are on. */
async function pullExactly(client: Client, ctx: BenchContext, repo: string, blob: BlobSpec): Promise<void> {
  const got = await pullBlob(client, ctx.storage, repo, blob.digest);
  if (got.bytes !== blob.size || got.digest !== blob.digest)
    throw new UnexpectedResponseError(
      `GET blob ${blob.digest}: ${got.bytes} bytes of digest ${got.digest}, expected ${blob.size} bytes`,
    );
  if (got.redirected !== ctx.blobRedirect)
    throw new UnexpectedResponseError(
      `GET blob ${blob.digest}: ${got.redirected ? 'redirected' : 'served directly'}, expected ` +
        `${ctx.blobRedirect ? 'a 307 to storage' : 'a 200 with the bytes'}`,
    );
}

/** Workload 1: one large monolithic push (POST, then PUT with the whole body streamed). */
export const pushBig: Workload = {
  id: 'push-big',
  title: 'Large blob push',
  description:
    'One monolithic push: `POST /v2/<repo>/blobs/uploads/`, then `PUT <location>?digest=` with the whole body streamed ' +
    '(a random 1 MiB block repeated, last block unique). Warm-up: one smaller push. Timed from POST to the 201.',
  metrics: transferMetrics,
  async run(target, ctx) {
    const state = ctx.state(target);
    state.warmupBlob = ctx.source.create(ctx.scale.warmupBlob);
    await pushBlob(state.client, BIG_REPO, ctx.source.body(state.warmupBlob));
    const blob = ctx.source.create(ctx.scale.bigBlob);
    const metrics = await measureTransfer(target, ctx, blob.size, () =>
      pushBlob(state.client, BIG_REPO, ctx.source.body(blob)),
    );
    state.bigBlob = blob;
    return metrics;
  },
};

/** Workload 2: pull the large blob, streamed and discarded. */
export const pullBig: Workload = {
  id: 'pull-big',
  title: 'Large blob pull',
  description:
    '`GET /v2/<repo>/blobs/<digest>` of the blob pushed by the push workload, streamed, hashed and discarded: every pull ' +
    'must bring the pushed size and digest. With redirects on, the GET must answer 307 and the presigned URL is followed; ' +
    'the time covers both requests. Warm-up: one pull of the smaller warm-up blob. The blob was just written, so the ' +
    'storage reads it from the page cache.',
  metrics: transferMetrics,
  async run(target, ctx) {
    const state = ctx.state(target);
    const { bigBlob, warmupBlob } = state;
    if (!bigBlob || !warmupBlob) throw new Error(`${target.name}: the pull workload needs the push workload's blobs`);
    await pullExactly(state.client, ctx, BIG_REPO, warmupBlob);
    return measureTransfer(target, ctx, bigBlob.size, () => pullExactly(state.client, ctx, BIG_REPO, bigBlob));
  },
};

/** Workload 3: many small pushes in sequence. */
export const pushSmall: Workload = {
  id: 'push-small',
  title: 'Small blob pushes',
  description:
    'Sequential monolithic pushes (POST + PUT) of distinct blobs, one connection. Latency is per push (both requests). ' +
    'Digests are computed before the clock starts.',
  metrics: [
    { key: 'throughput', label: 'throughput (MB/s)', better: 'higher', digits: 1, headline: true },
    { key: 'p50', label: 'p50 latency per push (ms)', better: 'lower', digits: 1, headline: true },
    { key: 'max', label: 'max latency per push (ms)', better: 'lower', digits: 1 },
    ...cpuMetricRows('serverCpu', 'CPU time (s)', 2),
  ],
  async run(target, ctx) {
    const { client } = ctx.state(target);
    const { smallBlob, smallPushes, smallWarmups } = ctx.scale;
    const blobs = Array.from({ length: smallWarmups + smallPushes }, () => ctx.source.create(smallBlob));
    for (const blob of blobs.slice(0, smallWarmups)) await pushBlob(client, SMALL_REPO, ctx.source.body(blob));
    const latencies: number[] = [];
    const cpu0 = cpuSnapshot(target, ctx);
    const start = performance.now();
    for (const blob of blobs.slice(smallWarmups)) {
      const t0 = performance.now();
      await pushBlob(client, SMALL_REPO, ctx.source.body(blob));
      latencies.push(performance.now() - t0);
    }
    const ms = performance.now() - start;
    return {
      throughput: mbPerSecond(smallPushes * smallBlob, ms),
      p50: percentile(latencies, 50),
      max: Math.max(...latencies),
      ...cpuMetrics(cpu0, cpuSnapshot(target, ctx), 'serverCpu'),
    };
  },
};

/** Workload 4: manifest GET by tag under concurrent load. */
export const manifestGet: Workload = {
  id: 'manifest-get',
  title: 'Manifest GET by tag',
  description:
    'A small image (config + one 1 MiB layer + OCI manifest, tagged) is pushed first; then `GET /v2/<repo>/manifests/<tag>` ' +
    'in a tight loop on an undici Pool of concurrent connections, one request in flight per connection. Every response must be ' +
    '200 with exactly the pushed manifest. The warm-up lasts a minimum time and a minimum number of requests (capped at ' +
    '60 s); only requests completed inside the measured window count.',
  metrics: [
    { key: 'rps', label: 'requests/s', better: 'higher', digits: 0, headline: true },
    { key: 'p50', label: 'p50 latency (ms)', better: 'lower', digits: 2 },
    { key: 'p99', label: 'p99 latency (ms)', better: 'lower', digits: 2, headline: true },
    ...cpuMetricRows('cpuPerRequest', 'CPU per request (µs)', 0),
    { key: 'clientCpu', label: 'load generator CPU (% of one core)', better: 'neither', digits: 0 },
    { key: 'warmups', label: 'warm-up requests (not measured)', better: 'neither', digits: 0 },
  ],
  async run(target, ctx) {
    const { client } = ctx.state(target);
    const manifest = await pushImage(client, ctx.source);
    const path = `/v2/${IMAGE_REPO}/manifests/${IMAGE_TAG}`;
    return manifestLoad(target, ctx, path, manifest);
  },
};

/** Every workload, in the order they run (the pull needs the push's blob). */
export const WORKLOADS: Workload[] = [pushBig, pullBig, pushSmall, manifestGet];

/** A one-line summary of the sizes a scale uses, for the report. */
export function describeScale(scale: Scale): string {
  return (
    `${scale.name}: large blob ${binarySize(scale.bigBlob)} (warm-up ${binarySize(scale.warmupBlob)}), ` +
    `${scale.smallPushes} × ${binarySize(scale.smallBlob)} pushes (+${scale.smallWarmups} warm-up), ` +
    `manifest GET ${scale.loadSeconds} s at ${scale.connections} connections after a warm-up of ≥ ${scale.loadWarmupSeconds} s ` +
    `and ≥ ${scale.warmupRequests} requests`
  );
}

async function pushImage(client: Client, source: BlobSource): Promise<Buffer> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const layer = source.create(MiB);
  await pushBlob(client, IMAGE_REPO, { digest: configDigest, size: config.length, body: config });
  await pushBlob(client, IMAGE_REPO, source.body(layer));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
  await putManifest(client, IMAGE_REPO, IMAGE_TAG, manifest);
  return manifest;
}

/** The longest a manifest GET warm-up may take when the target is too slow to reach its request count. */
const MAX_WARMUP_MS = 60_000;

async function manifestLoad(
  target: Target,
  ctx: BenchContext,
  path: string,
  expected: Buffer,
): Promise<Record<string, number>> {
  const { scale } = ctx;
  const pool = new Pool(target.url, { connections: scale.connections, pipelining: 1 });
  const latencies: number[] = [];
  let warmups = 0;
  let completed = 0;
  let errors = 0;
  let firstError = '';
  const begin = performance.now();
  const minWarmupEnd = begin + scale.loadWarmupSeconds * 1000;
  // Set when the warm-up is over: at least its seconds and its request count (or the cap).
  let measureStart = Infinity;
  let end = Infinity;

  // CPU of the server and of this process over the measured window, read at its edges.
  const snapshot = () => ({ at: performance.now(), cpu: cpuSnapshot(target, ctx), client: process.cpuUsage() });
  let first: ReturnType<typeof snapshot> | undefined;
  let last: ReturnType<typeof snapshot> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const maybeStartMeasuring = (now: number) => {
    if (measureStart !== Infinity || now < minWarmupEnd) return;
    if (warmups < scale.warmupRequests && now < begin + MAX_WARMUP_MS) return;
    first = snapshot();
    measureStart = first.at;
    end = measureStart + scale.loadSeconds * 1000;
    timer = setTimeout(() => (last = snapshot()), end - performance.now());
  };

  const worker = async () => {
    for (;;) {
      const t0 = performance.now();
      maybeStartMeasuring(t0);
      if (t0 >= end) return;
      let ok = false;
      try {
        const res = await pool.request({ method: 'GET', path, headers: { accept: OCI_MANIFEST } });
        const body = Buffer.from(await res.body.arrayBuffer());
        ok = res.statusCode === 200 && body.equals(expected);
        if (!ok) firstError ||= `status ${res.statusCode}: ${body.toString('utf8', 0, 300)}`;
      } catch (e) {
        firstError ||= e instanceof Error ? e.message : String(e);
      }
      const t1 = performance.now();
      if (!ok) {
        errors++;
        if (errors >= 100) return; // a broken target: this worker stops, the run reports it
      } else if (t0 >= measureStart) {
        latencies.push(t1 - t0);
        if (t1 <= end) completed++;
      } else warmups++;
    }
  };
  try {
    await Promise.all(Array.from({ length: scale.connections }, worker));
    // The workers stop at `end` too and may get there before the timer's turn comes.
    last ??= snapshot();
  } finally {
    clearTimeout(timer);
    await pool.close();
  }
  if (errors > 0)
    throw new UnexpectedResponseError(`${target.name}: ${errors} manifest GETs failed; first: ${firstError}`);
  if (!first) throw new Error('the measured window never started');
  const window = (last.at - first.at) / 1000;
  const rps = completed / scale.loadSeconds;
  const clientCpuSeconds = (last.client.user - first.client.user + last.client.system - first.client.system) / 1e6;
  return {
    rps,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    ...cpuMetrics(first.cpu, last.cpu, 'cpuPerRequest', 1e6 / (rps * window)),
    clientCpu: (clientCpuSeconds / window) * 100,
    warmups,
  };
}
