/**
 * GC deletes per second (issue 9): a backlog of dangling blobs (bench/gc-dangling.ts: real bytes
 * in storage, review rows by the real triggers) on a new database on the test PostgreSQL, then
 * the real `GarbageCollector` — one per worker, each on its own connection pool, as gc-worker
 * replicas are — works the queue until it is empty. Filesystem and MinIO; 1 and 2 workers.
 * Afterwards the database and storage must hold none of the backlog.
 *
 * The reference registry's GC is offline (`registry garbage-collect`, the registry stopped or
 * read-only): its run time on the same number of dangling blobs in its own layout is reported
 * beside ours, as a rate, and is not like-for-like (it walks storage, we read a queue).
 *
 * Run: `bench/gc deletes` (see bench/README.md, "GC benchmarks").
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { GarbageCollector, GC_BATCH } from '@lading/app-gc-worker';
import { MetadataDb, openMetadataDb, type Tx } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { FilesystemBlobStorage, S3BlobStorage, type BlobStorage } from '@lading/storage';
import { createTestDatabase } from '../test/support/registry-processes';
import { purgeS3Prefix, testMinioClient, testS3Options } from '../test/support/s3';
import { backlogDepth, danglingBlobs, ladingObjects, queueDanglingBlobs, referenceObjects, S3RequestCounter, writeObjects, type ObjectSink } from './gc-dangling';
import { cpuSecondsOf, findProcesses } from './proc-stats';
import { REFERENCE_BIN, referenceStorageYaml, referenceVersion } from './registries';

type Driver = 'filesystem' | 's3';

const COUNT = Number(process.env.GC_BENCH_BLOBS ?? 100_000);
const SIZE = Number(process.env.GC_BENCH_BLOB_BYTES ?? 1024);
const DRIVERS = (process.env.GC_BENCH_STORAGE ?? 'filesystem,s3').split(',') as Driver[];
const WORKERS = (process.env.GC_BENCH_WORKERS ?? '1,2').split(',').map(Number);
const REPEATS = Number(process.env.GC_BENCH_REPEATS ?? 3);
const REFERENCE = process.env.GC_BENCH_REFERENCE !== '0';
const REFERENCE_COUNT: Record<Driver, number> = {
  filesystem: Number(process.env.GC_BENCH_REFERENCE_BLOBS ?? COUNT),
  // The reference deletes one blob at a time (a list and a delete request each): fewer on S3.
  s3: Number(process.env.GC_BENCH_REFERENCE_S3_BLOBS ?? Math.min(COUNT, 10_000)),
};

/** One timed GC to an empty queue. */
interface DeleteRun {
  driver: Driver;
  workers: number;
  blobs: number;
  seconds: number;
  setupSeconds: number;
  gcCpuSeconds: number;
  pgCpuSeconds: number;
  s3Requests: Record<string, number>;
  /** Blob review batches, and the wall time their steps took in all (ms): each store call, the storage removal, the whole transaction. */
  batches: number;
  steps: Record<string, number>;
  load: number[];
}

/**
 * Times what the collectors of `db` do, by step: wraps `db.transaction` so that every call on the
 * transaction's GC store is timed, and `storage.deleteBlobs` (one call per batch); counts the calls.
 */
function timeSteps(db: MetadataDb, storage: BlobStorage, steps: Map<string, number>, calls: Map<string, number>): void {
  const add = (step: string, ms: number) => {
    steps.set(step, (steps.get(step) ?? 0) + ms);
    calls.set(step, (calls.get(step) ?? 0) + 1);
  };
  const timed = <A extends unknown[], R>(step: string, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const t0 = performance.now();
      try {
        return await fn(...a);
      } finally {
        add(step, performance.now() - t0);
      }
    };
  const transaction = db.transaction.bind(db);
  db.transaction = <T>(work: (tx: Tx) => Promise<T>) =>
    timed('transaction (all)', transaction)((tx: Tx) => {
      const gc = new Proxy(tx.gc, {
        get(target, key, receiver) {
          const v = Reflect.get(target, key, receiver) as unknown;
          return typeof v === 'function' ? timed(`gc.${String(key)}`, (v as (...a: unknown[]) => Promise<unknown>).bind(target)) : v;
        },
      });
      return work(new Proxy(tx, { get: (target, key, receiver) => (key === 'gc' ? gc : Reflect.get(target, key, receiver)) }));
    }) as Promise<T>;
  storage.deleteBlobs = timed('storage.deleteBlobs', storage.deleteBlobs.bind(storage));
}

function log(msg: string): void {
  process.stderr.write(`[gc-bench] ${msg}\n`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The PostgreSQL backends serving database `name` (their process title names it). */
function backends(name: string): number[] {
  return findProcesses('postgres', (cmd) => cmd.includes(` ${name} `));
}

async function countObjects(sink: ObjectSink): Promise<number> {
  if (sink.kind === 'filesystem') {
    let n = 0;
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else n++;
      }
    };
    try {
      walk(sink.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return n;
  }
  let n = 0;
  for await (const _ of testMinioClient().listObjectsV2(process.env.LADING_TEST_S3_BUCKET!, `${sink.prefix}/`, true)) n++;
  return n;
}

async function ladingRun(driver: Driver, workers: number, counter: S3RequestCounter): Promise<DeleteRun> {
  const runId = randomUUID();
  const database = await createTestDatabase();
  const dbName = new URL(database.url).pathname.slice(1);
  const dir = mkdtempSync(join(tmpdir(), 'lading-gc-bench-'));
  const prefix = `gc-bench/${runId}`;
  const sink: ObjectSink = driver === 'filesystem' ? { kind: 'filesystem', root: dir } : { kind: 's3', prefix };
  const dbs: MetadataDb[] = [];
  try {
    // The first open migrates; the others find the schema.
    for (let i = 0; i < workers; i++) dbs.push(new MetadataDb(await openMetadataDb({ url: database.url })));
    await dbs[0]!.read.gc.setReviewAfter(0);
    const setupStart = performance.now();
    const blobs = danglingBlobs(COUNT, SIZE, runId);
    await writeObjects(sink, ladingObjects(blobs));
    await queueDanglingBlobs(database.url, blobs, 'gc-bench/dangling');
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const queued = await backlogDepth(database.url);
    if (queued.queued !== COUNT) throw new Error(`expected ${COUNT} queued blob reviews, found ${queued.queued}`);
    log(`${driver}, ${workers} worker(s): ${COUNT} dangling blobs ready in ${setupSeconds.toFixed(1)} s; collecting`);

    const config = loadConfig({}, { gc: { reviewafter: 0, disabled: true } });
    const steps = new Map<string, number>();
    const calls = new Map<string, number>();
    // One storage client per worker, as gc-worker replicas have.
    const collectors = dbs.map((db) => {
      const own = driver === 'filesystem' ? new FilesystemBlobStorage({ rootDirectory: dir }) : new S3BlobStorage(testS3Options(prefix));
      timeSteps(db, own, steps, calls);
      return new GarbageCollector(db, own, config);
    });
    counter.reset();
    const pg0 = cpuSecondsOf(backends(dbName));
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    for (;;) {
      await Promise.all(collectors.map((c) => c.runOnce()));
      if ((await backlogDepth(database.url)).queued === 0) break;
    }
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    // A backend that ended meanwhile took its CPU with it: a lower bound.
    const pgCpuSeconds = cpuSecondsOf(backends(dbName)) - pg0;
    const s3Requests = Object.fromEntries(counter.counts);

    const left = await backlogDepth(database.url);
    const objects = await countObjects(sink);
    const errors = collectors.reduce((n, c) => n + c.stats().errors, 0);
    const deleted = collectors.reduce((n, c) => n + c.stats().deleted, 0);
    if (left.blobs !== 0 || objects !== 0 || deleted !== COUNT || errors !== 0) {
      throw new Error(`GC left ${left.blobs} blob rows and ${objects} objects, deleted ${deleted} of ${COUNT}, ${errors} failed batches`);
    }
    const load = loadavg();
    log(`${driver}, ${workers} worker(s): ${(COUNT / seconds).toFixed(0)} deletes/s (${seconds.toFixed(2)} s), load ${load[0]!.toFixed(2)}`);
    // One storage removal per batch that deleted anything: every batch here.
    const batches = calls.get('storage.deleteBlobs') ?? 0;
    return { driver, workers, blobs: COUNT, seconds, setupSeconds, gcCpuSeconds: (cpu.user + cpu.system) / 1e6, pgCpuSeconds, s3Requests, batches, steps: Object.fromEntries(steps), load };
  } finally {
    for (const db of dbs) await db.close().catch(() => undefined);
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
    if (driver === 's3') await purgeS3Prefix(prefix);
  }
}

/** The reference's offline `garbage-collect` over `count` dangling blobs in its layout: seconds. */
async function referenceRun(driver: Driver, count: number): Promise<{ seconds: number; setupSeconds: number; load: number[] }> {
  const runId = randomUUID();
  const dir = mkdtempSync(join(tmpdir(), 'lading-gc-bench-ref-'));
  const prefix = `gc-bench/${runId}`;
  const sink: ObjectSink = driver === 'filesystem' ? { kind: 'filesystem', root: join(dir, 'data') } : { kind: 's3', prefix };
  try {
    const setupStart = performance.now();
    const blobs = danglingBlobs(count, SIZE, runId);
    // Its mark phase walks the repositories: there must be one, here with nothing in it.
    await writeObjects(sink, [...referenceObjects(blobs), { key: 'docker/registry/v2/repositories/gc-bench/_uploads/.keep', bytes: Buffer.alloc(0) }]);
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const config = join(dir, 'config.yml');
    const storage = driver === 'filesystem' ? ({ driver: 'filesystem' } as const) : ({ driver: 's3', rootDirectory: prefix, redirect: false } as const);
    writeFileSync(config, ['version: 0.1', 'log:', '  level: error', 'storage:', ...referenceStorageYaml(storage, dir), '  delete:', '    enabled: true', ''].join('\n'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const start = performance.now();
    await new Promise<void>((ok, fail) =>
      execFile(REFERENCE_BIN, ['garbage-collect', config], { env, maxBuffer: 1 << 30 }, (e, _out, err) => (e ? fail(new Error(`garbage-collect failed: ${e.message}\n${err}`)) : ok())),
    );
    const seconds = (performance.now() - start) / 1000;
    const left = (await countObjects(sink)) - 1; // the empty repository's placeholder
    if (left !== 0) throw new Error(`the reference's garbage-collect left ${left} objects`);
    const load = loadavg();
    log(`reference ${driver}: ${count} blobs in ${seconds.toFixed(2)} s (${(count / seconds).toFixed(0)} deletes/s), load ${load[0]!.toFixed(2)}`);
    return { seconds, setupSeconds, load };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (driver === 's3') await purgeS3Prefix(prefix);
  }
}

const f = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const counter = new S3RequestCounter().install();
  const runs: DeleteRun[] = [];
  const reference: Record<string, { seconds: number[]; count: number; load: number[][] }> = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const driver of DRIVERS) {
      for (const workers of WORKERS) runs.push(await ladingRun(driver, workers, counter));
      if (REFERENCE && r === 0) {
        const ref = await referenceRun(driver, REFERENCE_COUNT[driver]);
        (reference[driver] ??= { seconds: [], count: REFERENCE_COUNT[driver], load: [] }).seconds.push(ref.seconds);
        reference[driver]!.load.push(ref.load);
      }
    }
  }
  counter.uninstall();

  const lines: string[] = [];
  lines.push(`### GC deletes per second: ${f(COUNT)} dangling blobs of ${f(SIZE)} bytes, PostgreSQL`);
  lines.push('');
  lines.push(`Median of ${REPEATS} run(s) each; each run on a new database and storage root.`);
  lines.push('');
  lines.push('| storage | workers | deletes/s ↑ | MB/s ↑ | time (s) ↓ | runs: deletes/s | collector CPU (s) | PostgreSQL backends CPU (s) | S3 requests | load (1 min) |');
  lines.push('| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |');
  for (const driver of DRIVERS) {
    for (const workers of WORKERS) {
      const rs = runs.filter((x) => x.driver === driver && x.workers === workers);
      const seconds = median(rs.map((x) => x.seconds));
      const s3 = driver === 's3' ? Object.entries(rs[0]!.s3Requests).map(([k, v]) => `${k}: ${f(v)}`).join(', ') : 'n/a';
      lines.push(
        `| ${driver} | ${workers} | ${f(COUNT / seconds)} | ${f((COUNT * SIZE) / 1e6 / seconds, 2)} | ${f(seconds, 2)} | ${rs.map((x) => f(x.blobs / x.seconds)).join(', ')} | ${f(median(rs.map((x) => x.gcCpuSeconds)), 2)} | ${f(median(rs.map((x) => x.pgCpuSeconds)), 2)} | ${s3} | ${rs.map((x) => x.load[0]!.toFixed(1)).join(', ')} |`,
      );
    }
  }
  lines.push('', '#### Where a batch\'s time goes (ms per batch of up to ' + GC_BATCH + ' blobs, median over runs; with 2 workers the batches overlap)', '');
  const stepNames = [...new Set(runs.flatMap((x) => Object.keys(x.steps)))].sort();
  lines.push(`| storage | workers | batches | ${stepNames.join(' | ')} |`);
  lines.push(`| --- | ---: | ---: | ${stepNames.map(() => '---:').join(' | ')} |`);
  for (const driver of DRIVERS) {
    for (const workers of WORKERS) {
      const rs = runs.filter((x) => x.driver === driver && x.workers === workers);
      const perBatch = (step: string) => median(rs.map((x) => (x.steps[step] ?? 0) / Math.max(1, x.batches)));
      lines.push(`| ${driver} | ${workers} | ${f(median(rs.map((x) => x.batches)))} | ${stepNames.map((st) => f(perBatch(st), 1)).join(' | ')} |`);
    }
  }
  for (const driver of DRIVERS) {
    const two = median(runs.filter((x) => x.driver === driver && x.workers === 2).map((x) => x.seconds));
    const one = median(runs.filter((x) => x.driver === driver && x.workers === 1).map((x) => x.seconds));
    if (one && two) lines.push('', `${driver}: 2 workers / 1 worker deletes/s = ${f(one / two, 2)}×`);
  }
  if (REFERENCE) {
    lines.push('', '#### The reference registry\'s offline `garbage-collect` on dangling blobs (not like-for-like)', '');
    lines.push(`${referenceVersion(REFERENCE_BIN)}, \`docker-registry garbage-collect config.yml\` with the registry stopped; one run each.`);
    lines.push('');
    lines.push('| storage | blobs | run time (s) | deletes/s | Lading 1 worker / reference deletes/s | load (1 min) |');
    lines.push('| --- | ---: | ---: | ---: | ---: | --- |');
    for (const [driver, ref] of Object.entries(reference)) {
      const seconds = median(ref.seconds);
      const ours = COUNT / median(runs.filter((x) => x.driver === driver && x.workers === 1).map((x) => x.seconds));
      lines.push(`| ${driver} | ${f(ref.count)} | ${f(seconds, 2)} | ${f(ref.count / seconds)} | ${f(ours / (ref.count / seconds), 2)}× | ${ref.load.map((l) => l[0]!.toFixed(1)).join(', ')} |`);
    }
  }
  lines.push('', '```json', JSON.stringify({ runs, reference }), '```');
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
