/**
 * GC under load (issue 9): do pushes and pulls keep their latency while GC deletes? Lading split
 * (gateway, blob-upload, manifests, notifications, gc-worker as processes on a new database on
 * the test PostgreSQL) serves a fixed push + pull workload for a fixed time twice per round:
 * once with no backlog (the gc-worker only reviews the workload's own pushes, which it keeps),
 * then with a large backlog of dangling blobs queued at once (bench/gc-dangling.ts) that the
 * gc-worker deletes during the whole window. Reported: push and pull p50/p99 of both windows and
 * their ratio with / without, over all rounds, and the deletes GC made during the loaded window.
 *
 * Run: `bench/gc load` (see bench/README.md, "GC benchmarks").
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { randomImage, type TestBlob, type TestImage } from '@lading/testing';
import { backlogDepth, danglingBlobs, ladingObjects, queueDanglingBlobs, writeObjects, type DanglingBlob, type ObjectSink } from './gc-dangling';
import { OCI_MANIFEST, pullBlob, pushBlob, putManifest, UnexpectedResponseError } from './oci-client';
import { cpuSecondsOf, findProcesses, minioProcesses } from './proc-stats';
import { startLadingSplit, stopAll, type BenchStorage, type Target } from './registries';
import { percentile } from './stats';

const STORAGE = (process.env.GC_LOAD_STORAGE ?? 'filesystem') as 'filesystem' | 's3';
const SECONDS = Number(process.env.GC_LOAD_SECONDS ?? 30);
const ROUNDS = Number(process.env.GC_LOAD_ROUNDS ?? 3);
const BACKLOG = Number(process.env.GC_LOAD_BACKLOG ?? 60_000);
const PUSHERS = Number(process.env.GC_LOAD_PUSHERS ?? 4);
const PULLERS = Number(process.env.GC_LOAD_PULLERS ?? 4);
const LAYER = Number(process.env.GC_LOAD_LAYER_BYTES ?? 64 * 1024);
/**
 * The stack's `gc.reviewafter`. Not 0: at 0 s most image pushes meet the documented race (GC takes
 * the just-pushed blob's link before the manifest put) and the workload makes garbage of its own,
 * so the window without a backlog would not be one without deletes. The backlog is due at once all
 * the same ({@link queueDanglingBlobs} `dueNow`).
 */
const REVIEW_AFTER = process.env.GC_LOAD_REVIEWAFTER ?? '1h';
const SEED_IMAGES = 8;

function log(msg: string): void {
  process.stderr.write(`[gc-load] ${msg}\n`);
}

/** An image of one config and one layer, and where it goes: what the workload pushes and pulls. */
interface Image extends TestImage {
  repo: string;
  tag: string;
}

function makeImage(repo: string, tag: string): Image {
  return { ...randomImage({ layers: 1, layerSize: LAYER }), repo, tag };
}

const body = (b: TestBlob) => ({ digest: b.digest, size: b.size, body: b.bytes });

/** Pushes the image's blobs and then its manifest; pushes the blobs again when GC took them in between (the documented race at a 0 delay). */
async function pushImage(client: Client, image: Image, races: { n: number }): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await pushBlob(client, image.repo, body(image.config));
    await pushBlob(client, image.repo, body(image.layers[0]!));
    try {
      await putManifest(client, image.repo, image.tag, image.manifest);
      return;
    } catch (e) {
      if (attempt >= 3 || !(e instanceof UnexpectedResponseError) || !e.message.includes('MANIFEST_BLOB_UNKNOWN')) throw e;
      races.n++;
    }
  }
}

async function pullImage(client: Client, image: Image): Promise<void> {
  const res = await client.request({ method: 'GET', path: `/v2/${image.repo}/manifests/${image.tag}`, headers: { accept: OCI_MANIFEST } });
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200 || !body.equals(image.manifest)) throw new UnexpectedResponseError(`GET manifest ${image.repo}:${image.tag}: ${res.statusCode}`);
  const layer = image.layers[0]!;
  const got = await pullBlob(client, client, image.repo, layer.digest);
  if (got.digest !== layer.digest) throw new UnexpectedResponseError(`GET blob ${layer.digest}: got ${got.digest}`);
}

/** One measured window: latencies per push and per pull (ms), and what ran meanwhile. */
interface Window {
  phase: 'no GC' | 'GC deleting';
  round: number;
  push: number[];
  pull: number[];
  races: number;
  gcDeleted: number;
  backlogLeft: number;
  gcWorkerCpu: number;
  serverCpu: number;
  pgCpu: number;
  /** CPU of the shared MinIO (on s3; whatever else used it meanwhile counts too), else 0. */
  minioCpu: number;
  load: number;
}

let counter = 0;

/** Runs the push + pull workload for `seconds` on `clients` (the first PUSHERS push, the rest pull). */
async function workload(seeds: Image[], seconds: number, clients: Client[]): Promise<{ push: number[]; pull: number[]; races: number }> {
  const push: number[] = [];
  const pull: number[] = [];
  const races = { n: 0 };
  const end = performance.now() + seconds * 1000;
  const pusher = async (client: Client, i: number) => {
    while (performance.now() < end) {
      const image = makeImage(`load/push-${i}`, `t${counter++}`);
      const t0 = performance.now();
      await pushImage(client, image, races);
      push.push(performance.now() - t0);
    }
  };
  const puller = async (client: Client, i: number) => {
    for (let n = i; performance.now() < end; n++) {
      const t0 = performance.now();
      await pullImage(client, seeds[n % seeds.length]!);
      pull.push(performance.now() - t0);
    }
  };
  await Promise.all([
    ...clients.slice(0, PUSHERS).map((c, i) => pusher(c, i)),
    ...clients.slice(PUSHERS).map((c, i) => puller(c, i)),
  ]);
  return { push, pull, races: races.n };
}

function databaseUrl(target: Target): string {
  const u = new URL(process.env.LADING_TEST_PG_URL!);
  u.pathname = `/${target.database}`;
  return u.toString();
}

async function measure(target: Target, phase: Window['phase'], round: number, seeds: Image[], clients: Client[]): Promise<Window> {
  const url = databaseUrl(target);
  const pg = () => cpuSecondsOf(findProcesses('postgres', (cmd) => cmd.includes(` ${target.database} `)));
  const gcPids = () => target.apps()['gc-worker'] ?? [];
  const minio = () => (STORAGE === 's3' ? cpuSecondsOf(minioProcesses(process.env.LADING_TEST_S3_ENDPOINT!)) : 0);
  const before = await backlogDepth(url);
  const gc0 = cpuSecondsOf(gcPids());
  const all0 = cpuSecondsOf(target.pids());
  const pg0 = pg();
  const minio0 = minio();
  const r = await workload(seeds, SECONDS, clients);
  const after = await backlogDepth(url);
  const w: Window = {
    phase,
    round,
    ...r,
    gcDeleted: before.queued - after.queued,
    backlogLeft: after.queued,
    gcWorkerCpu: cpuSecondsOf(gcPids()) - gc0,
    serverCpu: cpuSecondsOf(target.pids()) - all0,
    pgCpu: pg() - pg0,
    minioCpu: minio() - minio0,
    load: loadavg()[0]!,
  };
  log(
    `round ${round}, ${phase}: push p50 ${percentile(w.push, 50).toFixed(1)} p99 ${percentile(w.push, 99).toFixed(1)} ms (${w.push.length}), ` +
      `pull p50 ${percentile(w.pull, 50).toFixed(1)} p99 ${percentile(w.pull, 99).toFixed(1)} ms (${w.pull.length}); GC deleted ${w.gcDeleted}, ${w.backlogLeft} left; load ${w.load.toFixed(1)}`,
  );
  return w;
}

async function waitDrained(url: string): Promise<number> {
  const start = performance.now();
  while ((await backlogDepth(url)).queued > 0) await new Promise((r) => setTimeout(r, 500));
  return (performance.now() - start) / 1000;
}

const f = (x: number, digits = 1) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const prefix = `gc-load/${randomUUID()}`;
  const storage: BenchStorage = STORAGE === 's3' ? { driver: 's3', rootDirectory: prefix, redirect: false } : { driver: 'filesystem' };
  const target = await startLadingSplit('split', storage, {
    LADING_GC_REVIEWAFTER: REVIEW_AFTER,
    LADING_GC_BLOBS_INTERVAL: '1s',
    LADING_GC_MANIFESTS_INTERVAL: '1s',
  });
  const clients = Array.from({ length: PUSHERS + PULLERS }, () => new Client(target.url, { pipelining: 1 }));
  const windows: Window[] = [];
  const drains: { seconds: number; blobs: number }[] = [];
  try {
    const url = databaseUrl(target);
    const sink: ObjectSink = STORAGE === 's3' ? { kind: 's3', prefix } : { kind: 'filesystem', root: join(target.dataDir, 'storage') };
    const seeds = Array.from({ length: SEED_IMAGES }, (_, i) => makeImage('load/pull', `seed${i}`));
    for (const image of seeds) await pushImage(clients[0]!, image, { n: 0 });
    log(`warming up for ${Math.min(SECONDS, 10)} s`);
    await workload(seeds, Math.min(SECONDS, 10), clients);
    for (let round = 1; round <= ROUNDS; round++) {
      // The backlog's bytes are written before the window without GC; it is queued (one commit) just before the window with GC.
      const blobs: DanglingBlob[] = danglingBlobs(BACKLOG, 1024, `${prefix}-${round}`);
      await writeObjects(sink, ladingObjects(blobs));
      windows.push(await measure(target, 'no GC', round, seeds, clients));
      await queueDanglingBlobs(url, blobs, 'gc-bench/dangling', { chunk: BACKLOG, dueNow: true });
      windows.push(await measure(target, 'GC deleting', round, seeds, clients));
      const left = windows[windows.length - 1]!.backlogLeft;
      if (left === 0) log(`round ${round}: the backlog ran out during the window: raise GC_LOAD_BACKLOG`);
      const drained = await waitDrained(url);
      drains.push({ seconds: drained, blobs: left });
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await target.stop();
    await stopAll();
  }

  const pooled = (phase: Window['phase'], kind: 'push' | 'pull') => windows.filter((w) => w.phase === phase).flatMap((w) => w[kind]);
  const lines: string[] = [];
  lines.push(`### GC under load: Lading split on ${STORAGE} and PostgreSQL`);
  lines.push('');
  lines.push(
    `${ROUNDS} round(s) of two ${SECONDS} s windows: without a backlog, then with ${BACKLOG.toLocaleString('en-US')} dangling blobs queued at once. ` +
      `${PUSHERS} pusher(s) (config + ${LAYER / 1024} KiB layer + manifest, each image new) and ${PULLERS} puller(s) (manifest by tag + layer of ${SEED_IMAGES} seeded images), one connection each. ` +
      `gc.reviewafter ${REVIEW_AFTER} (the backlog is queued due at once). Latencies of all rounds pooled.`,
  );
  lines.push('');
  lines.push('| metric | no GC | GC deleting | GC / no GC |');
  lines.push('| --- | ---: | ---: | ---: |');
  for (const kind of ['push', 'pull'] as const) {
    for (const p of [50, 99]) {
      const a = percentile(pooled('no GC', kind), p);
      const b = percentile(pooled('GC deleting', kind), p);
      lines.push(`| ${kind} p${p} (ms) ↓ | ${f(a)} | ${f(b)} | ${f(b / a, 2)}× |`);
    }
    const a = pooled('no GC', kind).length / (ROUNDS * SECONDS);
    const b = pooled('GC deleting', kind).length / (ROUNDS * SECONDS);
    lines.push(`| ${kind === 'push' ? 'pushes' : 'pulls'}/s ↑ | ${f(a)} | ${f(b)} | ${f(b / a, 2)}× |`);
  }
  const sum = (phase: Window['phase'], k: 'gcDeleted' | 'gcWorkerCpu' | 'serverCpu' | 'pgCpu' | 'minioCpu' | 'races') => windows.filter((w) => w.phase === phase).reduce((s, w) => s + w[k], 0);
  lines.push(`| GC deletes/s during the window | ${f(sum('no GC', 'gcDeleted') / (ROUNDS * SECONDS), 0)} | ${f(sum('GC deleting', 'gcDeleted') / (ROUNDS * SECONDS), 0)} | |`);
  const cpuRow = (label: string, k: 'gcWorkerCpu' | 'serverCpu' | 'pgCpu' | 'minioCpu') =>
    lines.push(`| ${label} (% of one core) | ${f((100 * sum('no GC', k)) / (ROUNDS * SECONDS), 0)} | ${f((100 * sum('GC deleting', k)) / (ROUNDS * SECONDS), 0)} | |`);
  cpuRow('gc-worker CPU', 'gcWorkerCpu');
  cpuRow('all Lading processes CPU', 'serverCpu');
  cpuRow('PostgreSQL backends CPU', 'pgCpu');
  if (STORAGE === 's3') cpuRow('MinIO CPU, shared', 'minioCpu');
  lines.push(`| manifest puts that met the review race (blobs pushed again) | ${sum('no GC', 'races')} | ${sum('GC deleting', 'races')} | |`);
  lines.push('');
  lines.push('Per round (p99 push / pull, ms; load average):');
  lines.push('');
  lines.push('| round | no GC push p99 | GC push p99 | no GC pull p99 | GC pull p99 | GC deleted in window | backlog left | rest drained in (s) | load (1 min) |');
  lines.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (let round = 1; round <= ROUNDS; round++) {
    const a = windows.find((w) => w.round === round && w.phase === 'no GC')!;
    const b = windows.find((w) => w.round === round && w.phase === 'GC deleting')!;
    const d = drains[round - 1]!;
    lines.push(
      `| ${round} | ${f(percentile(a.push, 99))} | ${f(percentile(b.push, 99))} | ${f(percentile(a.pull, 99))} | ${f(percentile(b.pull, 99))} | ${b.gcDeleted.toLocaleString('en-US')} | ${b.backlogLeft.toLocaleString('en-US')} | ${f(d.seconds)} | ${a.load.toFixed(1)}, ${b.load.toFixed(1)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch(async (e: unknown) => {
  console.error(e);
  await stopAll();
  process.exit(1);
});
