/**
 * Workloads driven by curl, the client the numbers came from: `curl -T <file>` for a
 * push's PUT and `curl -o /dev/null` for a pull. The Node client of `workloads.ts` (undici,
 * hashing every byte it pulls) stays beside them; on this machine it reads about 600–700 MB/s,
 * so it, not the registry, set the pace of its pull runs, and every registry looked the same
 * there. curl reads several GB/s and leaves the registry as the bottleneck.
 *
 * The push is also reported as a fraction of the durable-disk limit, measured once per run with
 * `dd … conv=fdatasync` in the same temp directory (Lading's pushes are durable: fsynced before
 * the 201).
 */
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { BlobSpec } from './blob-source';
import { startUpload, UnexpectedResponseError } from './oci-client';
import type { Target } from './registries';
import { cpuMetricRows, measureTransfer, transferMetrics, type BenchContext, type Metric, type Workload } from './workloads';

export const CURL_BIN = process.env.BENCH_CURL ?? '/usr/bin/curl';
const REPO = 'bench/curl';
const run = promisify(execFile);

/** The blob files curl sends, one per size, written once per run (removed at exit). */
const files = new Map<string, string>();
let fileDir: string | undefined;

async function fileOf(ctx: BenchContext, blob: BlobSpec): Promise<string> {
  const existing = files.get(blob.digest);
  if (existing) return existing;
  fileDir ??= mkdtempSync(join(tmpdir(), 'lading-bench-curl-'));
  const dir = fileDir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, blob.digest.slice(7, 19));
  const body = ctx.source.body(blob).body;
  await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : Readable.from(body), createWriteStream(path));
  files.set(blob.digest, path);
  return path;
}

let diskLimit: Promise<number> | undefined;

/** MB/s of `dd if=/dev/zero bs=1M count=1024 conv=fdatasync` in the temp directory: the durable-write limit. */
function durableDiskMBps(): Promise<number> {
  diskLimit ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-bench-dd-'));
    try {
      const t0 = performance.now();
      await run('dd', ['if=/dev/zero', `of=${join(dir, 'dd')}`, 'bs=1M', 'count=1024', 'conv=fdatasync'], { timeout: 300_000 });
      return (1024 * 1024 * 1024) / 1e6 / ((performance.now() - t0) / 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return diskLimit;
}

/** Runs curl with `args` and `-w`, expecting HTTP `status`; returns what `-w` printed. */
async function curl(args: string[], format: string, status: number): Promise<string> {
  const { stdout } = await run(CURL_BIN, ['-sS', '-o', '/dev/null', '-w', `%{http_code} ${format}`, ...args], {
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  const [code, ...rest] = stdout.trim().split(' ');
  if (Number(code) !== status) throw new UnexpectedResponseError(`curl ${args.join(' ')}: expected ${status}, got ${code}`);
  return rest.join(' ');
}

/** POST, then `curl -T file -X PUT <location>&digest=`: one monolithic push as a curl user does it. */
async function curlPush(target: Target, ctx: BenchContext, blob: BlobSpec, file: string): Promise<void> {
  const location = await startUpload(ctx.state(target).client, REPO);
  const url = new URL(location, target.url);
  url.searchParams.set('digest', blob.digest);
  await curl(['-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', file, url.toString()], '%{size_upload}', 201);
}

/** `curl -o /dev/null` of the blob (following a redirect to storage); checks the size that came. */
async function curlPull(target: Target, blob: BlobSpec): Promise<void> {
  const got = await curl(['-L', `${target.url}/v2/${REPO}/blobs/${blob.digest}`], '%{size_download}', 200);
  if (Number(got) !== blob.size) throw new UnexpectedResponseError(`curl GET ${blob.digest}: ${got} bytes, expected ${blob.size}`);
}

const pushMetrics: Metric[] = [
  ...transferMetrics,
  { key: 'diskFraction', label: 'fraction of the durable-disk limit (dd conv=fdatasync, same run)', better: 'higher', digits: 2 },
];

/** Timed pulls per target; the one of median throughput is reported (odd, so it is one run). */
const PULL_RUNS = 5;

/** The large blob of this scale, shared by the curl push and pull of one target. */
const pushed = new WeakMap<Target, BlobSpec>();

export const curlPushBig: Workload = {
  id: 'curl-push-big',
  title: 'Large blob push (curl -T)',
  description:
    '`POST /v2/<repo>/blobs/uploads/`, then `curl -T <file> -X PUT <location>&digest=` of the large blob, from a file ' +
    'written before the clock starts (in the page cache). Warm-up: the smaller blob. Timed from POST to the 201.',
  metrics: pushMetrics,
  async run(target, ctx) {
    const warm = ctx.source.create(ctx.scale.warmupBlob);
    await curlPush(target, ctx, warm, await fileOf(ctx, warm));
    const blob = ctx.source.create(ctx.scale.bigBlob);
    const file = await fileOf(ctx, blob);
    const limit = await durableDiskMBps();
    const metrics = await measureTransfer(target, ctx, blob.size, () => curlPush(target, ctx, blob, file));
    pushed.set(target, blob);
    rmSync(file, { force: true });
    files.delete(blob.digest);
    return { ...metrics, diskFraction: metrics.throughput / limit };
  },
};

export const curlPullBig: Workload = {
  id: 'curl-pull-big',
  title: 'Large blob pull (curl -o /dev/null)',
  description:
    '`curl -o /dev/null` of the blob the curl push workload pushed (from the page cache), `-L` so a 307 to storage is ' +
    'followed; the size that came is checked. Median of five pulls after a warm-up pull.',
  metrics: transferMetrics,
  async run(target, ctx) {
    const blob = pushed.get(target);
    if (!blob) throw new Error(`${target.name}: the curl pull workload needs the curl push workload's blob`);
    await curlPull(target, blob);
    const runs: Record<string, number>[] = [];
    for (let i = 0; i < PULL_RUNS; i++) runs.push(await measureTransfer(target, ctx, blob.size, () => curlPull(target, blob)));
    runs.sort((a, b) => a.throughput! - b.throughput!);
    return runs[(PULL_RUNS - 1) / 2]!;
  },
};

export const curlPushSmall: Workload = {
  id: 'curl-push-small',
  title: 'Small blob pushes (curl -T)',
  description:
    'Sequential pushes of distinct small blobs (the scale\'s size and count), each a POST and a `curl -T` PUT, files ' +
    'written before the clock starts. Throughput over all of them.',
  metrics: [
    { key: 'throughput', label: 'throughput (MB/s)', better: 'higher', digits: 1, headline: true },
    ...cpuMetricRows('serverCpu', 'CPU time (s)', 2),
  ],
  async run(target, ctx) {
    const { smallBlob, smallPushes, smallWarmups } = ctx.scale;
    const blobs = Array.from({ length: smallWarmups + smallPushes }, () => ctx.source.create(smallBlob));
    const paths: string[] = [];
    for (const b of blobs) paths.push(await fileOf(ctx, b));
    for (let i = 0; i < smallWarmups; i++) await curlPush(target, ctx, blobs[i]!, paths[i]!);
    const m = await measureTransfer(target, ctx, smallPushes * smallBlob, async () => {
      for (let i = smallWarmups; i < blobs.length; i++) await curlPush(target, ctx, blobs[i]!, paths[i]!);
    });
    for (const b of blobs) {
      rmSync(files.get(b.digest)!, { force: true });
      files.delete(b.digest);
    }
    return { throughput: m.throughput!, ...Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('serverCpu'))) };
  },
};

/** The curl workloads, when curl is installed. */
export const CURL_WORKLOADS: Workload[] = existsSync(CURL_BIN) ? [curlPushBig, curlPullBig, curlPushSmall] : [];
