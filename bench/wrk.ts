/**
 * Workloads driven by wrk (/usr/bin/wrk, a C load generator): the manifest GET by tag and the
 * small blob GET as a user's load test sees them, with none of the Node client's own cost on the
 * cores the servers share. The undici workload of `workloads.ts` stays beside them: it checks
 * every body, which wrk does not (it only counts non-2xx answers, and one fails the run here).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { OCI_MANIFEST, pushBlob, putManifest, UnexpectedResponseError } from './oci-client';
import type { Target } from './registries';
import { cpuMetricRows, cpuMetrics, cpuSnapshot, type BenchContext, type Workload } from './workloads';

/** Where Debian's `wrk` package installs it. */
export const WRK_BIN = process.env.BENCH_WRK ?? '/usr/bin/wrk';
/** The small blob's size: a config blob or a tiny layer. */
export const SMALL_BLOB_BYTES = 4096;
const REPO = 'bench/wrk';
const TAG = 'wrk';

/** What one wrk run reported. */
export interface WrkResult {
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  non2xx: number;
  socketErrors: number;
}

const run = promisify(execFile);

/** Milliseconds of a wrk duration (`812.00us`, `1.52ms`, `1.10s`). */
function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read the duration "${text}"`);
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

/** Runs wrk on `url` with `connections` connections for `seconds`, `--latency`; parses its report. */
export async function wrk(url: string, connections: number, seconds: number, headers: string[]): Promise<WrkResult> {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const { stdout } = await run(WRK_BIN, args, { timeout: (seconds + 60) * 1000 });
  const done = /(\d+) requests in ([\d.]+\w+),/.exec(stdout);
  const pct = (p: string) => new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(stdout)?.[1];
  const p50 = pct('50');
  const p99 = pct('99');
  if (!done || !p50 || !p99) throw new Error(`wrk: unexpected report:\n${stdout}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requests: Number(done[1]),
    seconds: ms(done[2]) / 1000,
    p50: ms(p50),
    p99: ms(p99),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((n, e) => n + Number(e), 0) : 0,
  };
}

const METRICS: Workload['metrics'] = [
  { key: 'rps', label: 'requests/s', better: 'higher', digits: 0, headline: true },
  { key: 'p50', label: 'p50 latency (ms)', better: 'lower', digits: 2 },
  { key: 'p99', label: 'p99 latency (ms)', better: 'lower', digits: 2, headline: true },
  ...cpuMetricRows('cpuPerRequest', 'CPU per request (µs)', 0),
];

/** A warm-up run (not measured), then the measured one with the server's CPU read around it. */
async function load(target: Target, ctx: BenchContext, path: string, headers: string[]): Promise<Record<string, number>> {
  const { scale } = ctx;
  const url = `${target.url}${path}`;
  await wrk(url, scale.connections, Math.max(2, scale.loadWarmupSeconds), headers);
  const before = cpuSnapshot(target, ctx);
  const r = await wrk(url, scale.connections, scale.loadSeconds, headers);
  const after = cpuSnapshot(target, ctx);
  if (r.non2xx > 0 || r.socketErrors > 0)
    throw new UnexpectedResponseError(`${target.name}: wrk saw ${r.non2xx} non-2xx answers and ${r.socketErrors} socket errors on ${path}`);
  const rps = r.requests / r.seconds;
  return { rps, p50: r.p50, p99: r.p99, ...cpuMetrics(before, after, 'cpuPerRequest', 1e6 / r.requests) };
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes the small blob and a manifest over it (tagged); returns the blob's digest. */
async function seed(target: Target, ctx: BenchContext): Promise<string> {
  const { client } = ctx.state(target);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const blob = Buffer.alloc(SMALL_BLOB_BYTES, 7);
  await pushBlob(client, REPO, { digest: digestOf(config), size: config.length, body: config });
  await pushBlob(client, REPO, { digest: digestOf(blob), size: blob.length, body: blob });
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(blob), size: blob.length }],
  };
  await putManifest(client, REPO, TAG, Buffer.from(JSON.stringify(manifest)));
  return digestOf(blob);
}

/** Manifest GET by tag under wrk. */
export const wrkManifestGet: Workload = {
  id: 'wrk-manifest-get',
  title: 'Manifest GET by tag (wrk)',
  description:
    '`wrk -t2 -c<connections> --latency` on `GET /v2/<repo>/manifests/<tag>` (Accept: the OCI manifest type) after a ' +
    'warm-up run; any non-2xx answer or socket error fails the run. Requests/s and latency as wrk reports them.',
  metrics: METRICS,
  async run(target, ctx) {
    await seed(target, ctx);
    return load(target, ctx, `/v2/${REPO}/manifests/${TAG}`, [`Accept: ${OCI_MANIFEST}`]);
  },
};

/** Small blob GET under wrk. */
export const wrkSmallBlobGet: Workload = {
  id: 'wrk-small-blob-get',
  title: `Small blob GET (wrk, ${SMALL_BLOB_BYTES} bytes)`,
  description: `The same wrk run on \`GET /v2/<repo>/blobs/<digest>\` of a ${SMALL_BLOB_BYTES}-byte blob.`,
  metrics: METRICS,
  async run(target, ctx) {
    const digest = await seed(target, ctx);
    return load(target, ctx, `/v2/${REPO}/blobs/${digest}`, []);
  },
};
