/**
 * Lading vs the reference registry, side by side on this machine, over the same workloads.
 *
 *   bench/run                      (or: SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register bench/run.ts)
 *
 * Environment:
 *   BENCH_SUITE          `filesystem` (default: Lading embedded vs the reference, both on the filesystem),
 *                        `s3` (Lading split and embedded vs the reference on the test MinIO, redirects off then on;
 *                        needs `eval "$(bash scripts/services env)"`), `gets` or `pulls` (split, embedded and the
 *                        reference on the filesystem; the test PostgreSQL for split, as for s3)
 *   BENCH_SCALE          `full` (default: 1 GiB blobs, 10 s load) or `small` (64 MiB, 5 s) for a quick run
 *   BENCH_OUT            where to write the markdown (default bench/results/latest.md, or latest-s3.md, at full
 *                        scale; bench/results/latest-<scale>.md or latest-s3-<scale>.md otherwise, which git ignores)
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
import { Agent, Client } from 'undici';
import { BlobSource } from './blob-source';
import { removeCraneFiles } from './crane';
import { REFERENCE_BIN, ROOT, referenceVersion, stopAll, type Target } from './registries';
import { renderReport, type BenchReport, type MachineFacts, type RoundReport, type WorkloadResult } from './report';
import { GiB } from './stats';
import { SUITES, type Round, type Suite } from './suites';
import { SCALES, describeScale, type BenchContext, type Scale, type TargetState } from './workloads';

const README = join(ROOT, 'bench/README.md');
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
    command: commandLine(),
  };
}

/** `BENCH_*=… bench/run` as this run was started (the note elided: the report's notes hold it). */
function commandLine(): string {
  const settings = ['BENCH_SUITE', 'BENCH_SCALE', 'BENCH_OUT', 'BENCH_REFERENCE_BIN', 'BENCH_NOTE']
    .filter((name) => process.env[name])
    .map((name) => (name === 'BENCH_NOTE' ? `${name}="…"` : `${name}=${process.env[name]}`));
  const run = `\`${[...settings, 'bench/run'].join(' ')}\``;
  return ['s3', 'gets', 'pulls'].includes(process.env.BENCH_SUITE ?? '') ? `\`eval "$(bash scripts/services env)"\`, then ${run}` : run;
}

function notes(suite: Suite, report: BenchReport, methods: Map<string, Set<string>>): string[] {
  const used = [...methods].map(([name, m]) => `${name}: ${[...m].join(', ') || 'not measured'}`).join('; ');
  const list = [
    `Ratios are ${report.ratios.map((r) => `${r.numerator} / ${r.denominator}`).join(', ')}. ↑ marks metrics where higher ` +
      'is better, ↓ where lower is better. MB = 10^6 bytes.',
    suite.notes[0],
    "Peak RSS: the server's VmHWM is reset (`echo 5 > /proc/<pid>/clear_refs`) just before the transfer and read right after it, " +
      `while VmRSS is also sampled every 100 ms; the larger is reported (method used — ${used}).`,
    'The load generator is one Node process on the same 2 cores as the servers: it competes with them for CPU, and can itself ' +
      'cap the requests/s it measures (see its CPU share). Server CPU time per request is the steadier comparison on a busy machine.',
    ...suite.notes.slice(1),
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

function updateReadme(marker: string, markdown: string): void {
  const readme = readFileSync(README, 'utf8');
  const [startMark, endMark] = [`<!-- ${marker}:start -->`, `<!-- ${marker}:end -->`];
  const start = readme.indexOf(startMark);
  const end = readme.indexOf(endMark);
  if (start < 0 || end < start) {
    log(`${relative(ROOT, README)} has no ${startMark} … ${endMark} section; not updated`);
    return;
  }
  // Under the README's `## Latest results` / `### <suite>` headings.
  const body = markdown.replace(/^# .*\n/, '').replace(/^(#+) /gm, '##$1 ');
  writeFileSync(README, `${readme.slice(0, start + startMark.length)}\n${body.trim()}\n${readme.slice(end)}`);
}

/** Runs one round: starts its registries, runs every workload against each, stops them. */
async function runRound(
  suite: Suite,
  round: Round,
  referenceBin: string,
  base: Omit<BenchContext, 'state' | 'blobRedirect'>,
  methods: Map<string, Set<string>>,
): Promise<RoundReport> {
  log(
    `${round.title ?? suite.name}: starting ${suite.name === 'filesystem' ? 'Lading (embedded) and the reference registry' : 'the registries'}`,
  );
  const targets = await round.start(referenceBin);
  const report: RoundReport = {
    title: round.title,
    description: round.description,
    targets: targets.map((t) => t.name),
    results: [],
  };
  log(targets.map((t) => `${t.name} at ${t.url} (pids ${t.pids().join(',')})`).join('; '));
  const states = new Map<Target, TargetState>();
  for (const t of targets) {
    states.set(t, {
      client: new Client(t.url, { headersTimeout: TRANSFER_TIMEOUT_MS, bodyTimeout: TRANSFER_TIMEOUT_MS }),
      memoryMethods: new Set(),
    });
  }
  const ctx: BenchContext = { ...base, blobRedirect: round.blobRedirect, state: (t) => states.get(t)! };
  try {
    for (const [i, workload] of suite.workloads.entries()) {
      // The first target rotates from one workload to the next (alternates, with two).
      const order = targets.map((_t, j) => targets[(i + j) % targets.length]);
      const result: WorkloadResult = { workload, order: order.map((t) => t.name), values: {} };
      report.results.push(result);
      for (const target of order) {
        if (interrupted) throw new Error('interrupted');
        if (Object.values(target.apps()).some((pids) => pids.length === 0)) {
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
    for (const [t, s] of states) {
      const seen = methods.get(t.name) ?? new Set<string>();
      for (const m of s.memoryMethods) seen.add(m);
      methods.set(t.name, seen);
    }
    log(`${round.title ?? suite.name}: stopping the registries and removing their data`);
    await Promise.all(targets.map((t) => t.stop()));
  }
  return report;
}

/** Set by SIGINT/SIGTERM: the run stops at the next workload and writes no report. */
let interrupted = false;

async function main(): Promise<number> {
  const suiteName = process.env.BENCH_SUITE || 'filesystem';
  const suite = SUITES[suiteName];
  if (!suite) throw new Error(`BENCH_SUITE must be one of ${Object.keys(SUITES).join(', ')}; got "${suiteName}"`);
  const scaleName = process.env.BENCH_SCALE || 'full';
  const scale: Scale | undefined = SCALES[scaleName];
  if (!scale) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}; got "${scaleName}"`);
  suite.check();
  const referenceBin = process.env.BENCH_REFERENCE_BIN || REFERENCE_BIN;
  const out = process.env.BENCH_OUT || join(ROOT, 'bench/results', suite.resultsFile(scale));
  const machine = machineFacts(referenceBin);
  const facts = await suite.facts(scale);

  const source = new BlobSource();
  log(`suite ${suite.name}; scale ${describeScale(scale)}`);
  log('hashing the shared prefix of the large blob once');
  source.create(scale.bigBlob);

  const storage = new Agent({ headersTimeout: TRANSFER_TIMEOUT_MS, bodyTimeout: TRANSFER_TIMEOUT_MS });
  const methods = new Map<string, Set<string>>();
  const rounds: RoundReport[] = [];
  try {
    for (const round of suite.rounds) {
      if (interrupted) throw new Error('interrupted');
      rounds.push(
        await runRound(suite, round, referenceBin, { scale, source, storage, backends: suite.backends }, methods),
      );
    }
  } finally {
    await storage.close();
  }
  machine.loadAfter = loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

  const report: BenchReport = {
    title: suite.title,
    ladingSetup: suite.ladingSetup,
    facts,
    scale,
    scaleSummary: describeScale(scale),
    machine,
    ratios: suite.ratios,
    rounds,
    notes: [],
  };
  report.notes = notes(suite, report, methods);
  const markdown = renderReport(report);
  console.log(markdown);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, markdown);
  log(`wrote ${relative(ROOT, out)}`);
  if (scale.name === 'full' && !process.env.BENCH_OUT) updateReadme(suite.readmeMarker, markdown);
  return rounds.some((r) => r.results.some((x) => x.error)) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping the registries and removing their data`);
    stopAll()
      .then(removeCraneFiles)
      .finally(() => process.exit(130));
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
    if (interrupted) return;
    await stopAll();
    removeCraneFiles();
  });
