/**
 * Lading vs the reference registry, side by side on this machine, over the same workloads.
 *
 *   bench/run                      (or: SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register bench/run.ts)
 *
 * Environment:
 *   BENCH_SCALE          `full` (default: 1 GiB blobs, 10 s load) or `small` (64 MiB, 5 s) for a quick run
 *   BENCH_OUT            where to write the markdown (default bench/results/latest.md at full scale,
 *                        bench/results/latest-<scale>.md otherwise, which git ignores)
 *   BENCH_NOTE           a sentence added to the notes (e.g. what else was running)
 *   BENCH_REFERENCE_BIN  the reference registry binary (default /usr/bin/docker-registry)
 *
 * Prints the report and writes it; exits 0 unless something broke (a server failed, a request
 * got a wrong answer). Missing a target is a finding, not a failure.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Client } from 'undici';
import { BlobSource } from './blob-source';
import {
  REFERENCE_BIN,
  ROOT,
  referenceVersion,
  startLadingEmbedded,
  startReference,
  stopAll,
  type Target,
} from './registries';
import { renderReport, type BenchReport, type MachineFacts, type WorkloadResult } from './report';
import { GiB } from './stats';
import { SCALES, WORKLOADS, describeScale, type BenchContext, type TargetState } from './workloads';

const README = join(ROOT, 'bench/README.md');
const README_START = '<!-- results:start -->';
const README_END = '<!-- results:end -->';
/** Long enough for a 1 GiB body on a slow, loaded machine; bounded so a hung server ends the run. */
const TRANSFER_TIMEOUT_MS = 10 * 60_000;

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function machineFacts(referenceBin: string): MachineFacts {
  const cpuList = cpus();
  const dirty = git('status', '--porcelain', '--untracked-files=no')
    ? ' with uncommitted changes in the work tree'
    : '';
  return {
    date: new Date().toISOString(),
    cpus: `nproc ${availableParallelism()} (${cpuList[0]?.model.trim() ?? 'unknown CPU'})`,
    memory: `${(totalmem() / GiB).toFixed(1)} GiB RAM`,
    os: `${type()} ${release()}`,
    node: process.version,
    lading: `commit ${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty}`,
    reference: `CNCF Distribution ${referenceVersion(referenceBin)} (${referenceBin})`,
    loadBefore: loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
    loadAfter: '',
  };
}

function notes(report: BenchReport, states: Map<Target, TargetState>): string[] {
  const methods = [...states]
    .map(([t, s]) => `${t.name}: ${[...s.memoryMethods].join(', ') || 'not measured'}`)
    .join('; ');
  const list = [
    'Ratios are Lading / reference. ↑ marks metrics where higher is better, ↓ where lower is better. MB = 10^6 bytes.',
    'Both registries run at the same time, each as a child process on 127.0.0.1 with a fresh temp data directory; ' +
      'each workload runs against one, then the other, and the order alternates from one workload to the next. Warm-up is not measured.',
    "Peak RSS: the server's VmHWM is reset (`echo 5 > /proc/<pid>/clear_refs`) just before the transfer and read right after it, " +
      `while VmRSS is also sampled every 100 ms; the larger is reported (method used — ${methods}).`,
    'The load generator is one Node process on the same 2 cores as the servers: it competes with them for CPU, and can itself ' +
      'cap the requests/s it measures (see its CPU share). Server CPU time per request is the steadier comparison on a busy machine.',
    "Lading's database is created by `lading migrate` before `lading serve` starts, so the server opens an existing PGlite " +
      "database: PGlite's first boot (initdb) leaves several hundred MB of WebAssembly memory resident in the process that ran it.",
    "The reference runs with its access log off and the in-memory blob descriptor cache on (its stock configuration's cache); " +
      'Lading at log level `warn` writes no access log either.',
  ];
  if (process.env.BENCH_NOTE) list.push(process.env.BENCH_NOTE);
  if (report.scale.name !== 'full')
    list.push(
      `Scale \`${report.scale.name}\`: the targets are stated for the full scale (1 GiB); these numbers are indicative only.`,
    );
  return list;
}

function updateReadme(markdown: string): void {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) {
    log(`${relative(ROOT, README)} has no ${README_START} … ${README_END} section; not updated`);
    return;
  }
  const body = markdown.replace(/^# .*\n/, '').replace(/^## /gm, '### ');
  writeFileSync(README, `${readme.slice(0, start + README_START.length)}\n${body.trim()}\n${readme.slice(end)}`);
}

/** Set by SIGINT/SIGTERM: the run stops at the next workload and writes no report. */
let interrupted = false;

async function main(): Promise<number> {
  const scaleName = process.env.BENCH_SCALE || 'full';
  const scale = SCALES[scaleName];
  if (!scale) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}; got "${scaleName}"`);
  const referenceBin = process.env.BENCH_REFERENCE_BIN || REFERENCE_BIN;
  const out =
    process.env.BENCH_OUT ||
    join(ROOT, 'bench/results', scale.name === 'full' ? 'latest.md' : `latest-${scale.name}.md`);
  const machine = machineFacts(referenceBin);

  const source = new BlobSource();
  log(`scale ${describeScale(scale)}`);
  log('hashing the shared prefix of the large blob once');
  source.create(scale.bigBlob);

  log('starting Lading (embedded) and the reference registry');
  const [lading, reference] = await Promise.all([startLadingEmbedded(), startReference(referenceBin)]);
  log(
    `Lading at ${lading.url} (pid ${lading.pids().join(',')}), reference at ${reference.url} (pid ${reference.pids().join(',')})`,
  );
  const states = new Map<Target, TargetState>();
  for (const t of [lading, reference]) {
    states.set(t, {
      client: new Client(t.url, { headersTimeout: TRANSFER_TIMEOUT_MS, bodyTimeout: TRANSFER_TIMEOUT_MS }),
      memoryMethods: new Set(),
    });
  }
  const ctx: BenchContext = { scale, source, state: (t) => states.get(t)! };

  const results: WorkloadResult[] = [];
  try {
    for (const [i, workload] of WORKLOADS.entries()) {
      const order = i % 2 === 0 ? [lading, reference] : [reference, lading];
      const result: WorkloadResult = { workload, order: order.map((t) => t.name), values: {} };
      results.push(result);
      for (const target of order) {
        if (interrupted) throw new Error('interrupted');
        if (target.pids().length === 0) {
          result.error = `${target.name} is not running:\n${target.log()}`;
          break;
        }
        log(`${workload.id}: ${target.name}`);
        try {
          result.values[target.name] = await workload.run(target, ctx);
          log(
            `${workload.id}: ${target.name} ${JSON.stringify(result.values[target.name], (_k, v) => (typeof v === 'number' ? Number(v.toFixed(2)) : v))}`,
          );
        } catch (e) {
          result.error = `${target.name}: ${e instanceof Error ? e.message : String(e)}`;
          log(`${workload.id} failed: ${result.error}`);
          break;
        }
      }
    }
  } finally {
    await Promise.all([...states.values()].map((s) => s.client.close()));
  }
  machine.loadAfter = loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

  const report: BenchReport = { scale, scaleSummary: describeScale(scale), machine, results, notes: [] };
  report.notes = notes(report, states);
  const markdown = renderReport(report);
  console.log(markdown);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, markdown);
  log(`wrote ${relative(ROOT, out)}`);
  if (scale.name === 'full' && !process.env.BENCH_OUT) updateReadme(markdown);
  return results.some((r) => r.error) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping both registries and removing their data`);
    stopAll().finally(() => process.exit(130));
  });
}

main()
  .then(
    (code) => (process.exitCode = code),
    (e) => {
      if (!interrupted) console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exitCode = 1;
    },
  )
  .finally(async () => {
    if (!interrupted) await stopAll();
  });
