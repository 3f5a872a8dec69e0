/**
 * The workloads, each run against every target in turn. A workload warms up first (not
 * measured), then measures; it returns its metrics as numbers keyed by `Metric.key`.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Client, Pool } from 'undici';
import type { BlobSource, BlobSpec } from './blob-source';
import { OCI_MANIFEST, pullBlob, pushBlob, putManifest, UnexpectedResponseError } from './oci-client';
import { MemoryWatch, cpuSecondsOf, type MemoryPeak } from './proc-stats';
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
  },
};

/** One number a workload reports, and which way is better. */
export interface Metric {
  key: string;
  label: string;
  better: 'higher' | 'lower' | 'neither';
  digits: number;
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

const transferMetrics: Metric[] = [
  { key: 'throughput', label: 'throughput (MB/s)', better: 'higher', digits: 1 },
  { key: 'seconds', label: 'duration (s)', better: 'lower', digits: 2 },
  { key: 'serverCpu', label: 'server CPU time (s)', better: 'lower', digits: 2 },
  { key: 'peakRss', label: 'server peak RSS during transfer (MB)', better: 'lower', digits: 0 },
  { key: 'startRss', label: 'server RSS before transfer (MB)', better: 'lower', digits: 0 },
];

/** Runs `transfer` while watching the target's memory and CPU; returns the transfer metrics. */
async function measureTransfer(
  target: Target,
  state: TargetState,
  bytes: number,
  transfer: () => Promise<void>,
): Promise<Record<string, number>> {
  const watch = new MemoryWatch(() => target.pids());
  const cpu0 = cpuSecondsOf(target.pids());
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
  return {
    throughput: mbPerSecond(bytes, ms),
    seconds: ms / 1000,
    serverCpu: cpuSecondsOf(target.pids()) - cpu0,
    peakRss: peak.peakRss / MB,
    startRss: peak.startRss / MB,
  };
}

async function pullExactly(client: Client, repo: string, blob: BlobSpec): Promise<void> {
  const bytes = await pullBlob(client, repo, blob.digest);
  if (bytes !== blob.size)
    throw new UnexpectedResponseError(`GET blob ${blob.digest}: ${bytes} bytes, expected ${blob.size}`);
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
    const metrics = await measureTransfer(target, state, blob.size, () =>
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
    '`GET /v2/<repo>/blobs/<digest>` of the blob pushed by the push workload, streamed and discarded (bytes counted). ' +
    'Warm-up: one pull of the smaller warm-up blob. The blob was just written, so both registries read it from the page cache.',
  metrics: transferMetrics,
  async run(target, ctx) {
    const state = ctx.state(target);
    const { bigBlob, warmupBlob } = state;
    if (!bigBlob || !warmupBlob) throw new Error(`${target.name}: the pull workload needs the push workload's blobs`);
    await pullExactly(state.client, BIG_REPO, warmupBlob);
    return measureTransfer(target, state, bigBlob.size, () => pullExactly(state.client, BIG_REPO, bigBlob));
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
    { key: 'throughput', label: 'throughput (MB/s)', better: 'higher', digits: 1 },
    { key: 'p50', label: 'p50 latency per push (ms)', better: 'lower', digits: 1 },
    { key: 'max', label: 'max latency per push (ms)', better: 'lower', digits: 1 },
    { key: 'serverCpu', label: 'server CPU time (s)', better: 'lower', digits: 2 },
  ],
  async run(target, ctx) {
    const { client } = ctx.state(target);
    const { smallBlob, smallPushes, smallWarmups } = ctx.scale;
    const blobs = Array.from({ length: smallWarmups + smallPushes }, () => ctx.source.create(smallBlob));
    for (const blob of blobs.slice(0, smallWarmups)) await pushBlob(client, SMALL_REPO, ctx.source.body(blob));
    const latencies: number[] = [];
    const cpu0 = cpuSecondsOf(target.pids());
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
      serverCpu: cpuSecondsOf(target.pids()) - cpu0,
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
    { key: 'rps', label: 'requests/s', better: 'higher', digits: 0 },
    { key: 'p50', label: 'p50 latency (ms)', better: 'lower', digits: 2 },
    { key: 'p99', label: 'p99 latency (ms)', better: 'lower', digits: 2 },
    { key: 'cpuPerRequest', label: 'server CPU per request (µs)', better: 'lower', digits: 0 },
    { key: 'clientCpu', label: 'load generator CPU (% of one core)', better: 'neither', digits: 0 },
    { key: 'warmups', label: 'warm-up requests (not measured)', better: 'neither', digits: 0 },
  ],
  async run(target, ctx) {
    const { client } = ctx.state(target);
    const manifest = await pushImage(client, ctx.source);
    const path = `/v2/${IMAGE_REPO}/manifests/${IMAGE_TAG}`;
    return manifestLoad(target, path, manifest, ctx.scale);
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
  path: string,
  expected: Buffer,
  scale: Scale,
): Promise<Record<string, number>> {
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
  const snapshot = () => ({ at: performance.now(), server: cpuSecondsOf(target.pids()), client: process.cpuUsage() });
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
    cpuPerRequest: ((last.server - first.server) / (rps * window)) * 1e6,
    clientCpu: (clientCpuSeconds / window) * 100,
    warmups,
  };
}
