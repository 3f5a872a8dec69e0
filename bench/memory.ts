/**
 * Memory (issue 11, the "Memory" bullet): peak resident memory of every process of Lading embedded
 * (one process, PGlite) and Lading split (gateway, blob-upload, manifests, notifications,
 * gc-worker on the test PostgreSQL), beside the reference registry, under three loads:
 *
 * 1. soak: the OCI conformance suite run back to back (6 times), each run's peak RSS per process
 *    (VmHWM reset just before the run) and RSS after it: no growth from run to run;
 * 2. large manifest: the conformance suite's large-manifest case (390 annotations of 10 KB,
 *    3.9 MB), one PUT then three concurrent ones, on a fresh registry after a small warm-up: the
 *    rise of each process's peak;
 * 3. 1 GiB push then pull (streamed, repeated random block): the rise of each process's peak.
 *
 *   bash scripts/services start postgres     # for the split stack, unless it runs
 *   eval "$(bash scripts/services env)"
 *   bench/memory                             # about 20 minutes here; BENCH_MEMORY_RUNS=2 for a quick look
 *
 * Environment:
 *   BENCH_MEMORY_RUNS     conformance runs per registry (default 6)
 *   BENCH_MEMORY_TARGETS  some of `embedded,split,reference` (default: all)
 *   BENCH_MEMORY_PARTS    some of `soak,manifest,transfer` (default: all)
 *   BENCH_MEMORY_BLOB     bytes of the large blob (default 1 GiB)
 *   BENCH_MEMORY_NODE_OPTIONS  NODE_OPTIONS for Lading's processes (e.g. `--max-old-space-size=128`)
 *   OCI_CONFORMANCE_BIN   the suite (default ~/.cache/lading/bin/conformance.test)
 *   BENCH_OUT             default bench/results/latest-memory.md
 *   BENCH_NOTE            a sentence for the notes
 *
 * The report goes to stdout and the file, progress to stderr. Exits 0 unless something broke; a
 * missed target (or a failed conformance spec, which is reported) is a finding.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'undici';
import { conformanceEnv } from '../test/support/clients-tools';
import { BlobSource } from './blob-source';
import { OCI_MANIFEST, pullBlob, pushBlob, putManifest } from './oci-client';
import { MemoryWatch, readMemory, type MemoryPeak } from './proc-stats';
import { REFERENCE_BIN, ROOT, startLadingEmbedded, startLadingSplit, startReference, stopAll, type Target } from './registries';
import { GiB, MB } from './stats';

function log(message: string): void {
  console.error(`[bench memory] ${message}`);
}

const RUNS = Number(process.env.BENCH_MEMORY_RUNS ?? 6);
const TARGETS = (process.env.BENCH_MEMORY_TARGETS ?? 'embedded,split,reference').split(',');
const PARTS = (process.env.BENCH_MEMORY_PARTS ?? 'soak,manifest,transfer').split(',');
const BLOB_BYTES = Number(process.env.BENCH_MEMORY_BLOB ?? GiB);
const CONFORMANCE = process.env.OCI_CONFORMANCE_BIN ?? join(homedir(), '.cache/lading/bin/conformance.test');
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench/results/latest-memory.md');

/** Targets of the issue, in MB (10^6 bytes). */
const EMBEDDED_SOAK_PEAK_MB = 256;
const SPLIT_SOAK_PEAK_MB = 128;
const RISE_MB = 32;

const ANNOTATIONS = 390;
const ANNOTATION_BYTES = 10_000;

/** Peak RSS per app over one interval, MB, and RSS right after it. */
interface AppPeaks {
  peak: Record<string, number>;
  after: Record<string, number>;
  start: Record<string, number>;
}

/** Watches `target`'s processes while `work` runs; peaks per app. */
async function peaksDuring(target: Target, work: () => Promise<void>): Promise<AppPeaks> {
  const watch = new MemoryWatch(() => target.pids(), 20);
  const startRss = appRss(target);
  watch.start();
  let peak: MemoryPeak;
  try {
    await work();
  } finally {
    peak = watch.stop();
  }
  const peaks: Record<string, number> = {};
  for (const [app, pids] of Object.entries(target.apps())) {
    peaks[app] = pids.reduce((sum, pid) => sum + (peak.peakByPid.get(pid) ?? 0), 0) / MB;
  }
  return { peak: peaks, after: appRss(target), start: startRss };
}

function appRss(target: Target): Record<string, number> {
  return Object.fromEntries(
    Object.entries(target.apps()).map(([app, pids]) => [app, pids.reduce((s, p) => s + (readMemory(p)?.rss ?? 0), 0) / MB]),
  );
}

/** Runs the conformance suite once against `url`; its exit code and the failed specs' count (from its output). */
async function conformanceRun(url: string, run: number): Promise<{ code: number | null; failed: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lading-bench-memory-conformance-'));
  const id = randomBytes(4).toString('hex');
  try {
    const child = spawn(CONFORMANCE, ['-test.v'], {
      cwd: dir,
      env: {
        ...process.env,
        HOME: dir,
        ...conformanceEnv(url, `bench/conformance-${run}-${id}`, `bench/conformance-mount-${run}-${id}`, dir),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
    child.stderr.on('data', () => undefined);
    const code = await new Promise<number | null>((ok) => child.once('exit', ok));
    const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
    const m = /Ran (\d+) of \d+ Specs[^\n]*\n[^\n]*?(\d+) Passed \| (\d+) Failed/.exec(plain);
    return { code, failed: m ? `${m[3]} failed of ${m[1]}` : 'summary not found' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A ~3.9 MB OCI manifest of 390 annotations of 10 KB (distinct per `seed`), as the conformance suite's large case. */
function largeManifest(config: { digest: string; size: number }, seed: number): Buffer {
  const annotations: Record<string, string> = {};
  for (let i = 0; i < ANNOTATIONS; i++) {
    annotations[`org.opencontainers.conformance.a${i}`] = String.fromCharCode(97 + ((seed * 7 + i) % 26)).repeat(ANNOTATION_BYTES);
  }
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [],
      annotations,
    }),
  );
}

interface TargetResult {
  name: string;
  soak: { run: number; code: number | null; failed: string; seconds: number; peaks: AppPeaks }[];
  manifest?: { one: AppPeaks; three: AppPeaks; bytes: number };
  transfer?: { push: AppPeaks; pull: AppPeaks };
}

async function start(name: string): Promise<Target> {
  if (name === 'embedded') return startLadingEmbedded('embedded');
  if (name === 'split') return startLadingSplit('split', { driver: 'filesystem' });
  return startReference(process.env.BENCH_REFERENCE_BIN ?? REFERENCE_BIN);
}

async function soak(target: Target, result: TargetResult): Promise<void> {
  for (let run = 1; run <= RUNS; run++) {
    const t0 = Date.now();
    let outcome = { code: null as number | null, failed: '' };
    const peaks = await peaksDuring(target, async () => {
      outcome = await conformanceRun(target.url, run);
    });
    const seconds = (Date.now() - t0) / 1000;
    result.soak.push({ run, ...outcome, seconds, peaks });
    log(`${target.name} run ${run}: exit ${outcome.code} (${outcome.failed}), ${seconds.toFixed(0)} s, peak ${fmtApps(peaks.peak)}, after ${fmtApps(peaks.after)}`);
  }
}

async function manifestCase(target: Target, result: TargetResult): Promise<void> {
  const client = new Client(target.url);
  try {
    const repo = 'bench/large-manifest';
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const configSpec = { digest: `sha256:${createHash('sha256').update(config).digest('hex')}`, size: config.length };
    await pushBlob(client, repo, { ...configSpec, body: (async function* () { yield config; })() });
    // Warm-up: a small manifest, so first-use costs of the code paths are paid before measuring.
    await putManifest(client, repo, 'warm', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configSpec }, layers: [] })));
    const one = largeManifest(configSpec, 0);
    const onePeaks = await peaksDuring(target, () => putManifest(client, repo, 'large-0', one));
    log(`${target.name} one ${(one.length / MB).toFixed(1)} MB manifest: rise ${fmtApps(rise(onePeaks))}`);
    const bodies = [1, 2, 3].map((s) => largeManifest(configSpec, s));
    const clients = bodies.map(() => new Client(target.url));
    let threePeaks: AppPeaks;
    try {
      threePeaks = await peaksDuring(target, async () => {
        await Promise.all(bodies.map((b, i) => putManifest(clients[i], repo, `large-${i + 1}`, b)));
      });
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    log(`${target.name} three concurrent: rise ${fmtApps(rise(threePeaks))}`);
    result.manifest = { one: onePeaks, three: threePeaks, bytes: one.length };
  } finally {
    await client.close();
  }
}

async function transfer(target: Target, result: TargetResult): Promise<void> {
  const client = new Client(target.url);
  const storage = new Client('http://127.0.0.1:1');
  try {
    const source = new BlobSource();
    const repo = 'bench/large-blob';
    const warm = source.create(16 * 1024 * 1024);
    await pushBlob(client, repo, source.body(warm));
    await pullBlob(client, storage, repo, warm.digest);
    const blob = source.create(BLOB_BYTES);
    const push = await peaksDuring(target, () => pushBlob(client, repo, source.body(blob)));
    log(`${target.name} push: rise ${fmtApps(rise(push))}`);
    const pull = await peaksDuring(target, async () => {
      const got = await pullBlob(client, storage, repo, blob.digest);
      if (got.digest !== blob.digest) throw new Error(`pull of ${blob.digest} brought ${got.digest}`);
    });
    log(`${target.name} pull: rise ${fmtApps(rise(pull))}`);
    result.transfer = { push, pull };
  } finally {
    await client.close();
    await storage.close();
  }
}

function rise(p: AppPeaks): Record<string, number> {
  return Object.fromEntries(Object.entries(p.peak).map(([app, v]) => [app, v - (p.start[app] ?? 0)]));
}

function fmtApps(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([app, v]) => `${app} ${v.toFixed(0)}`)
    .join(', ');
}

const mb = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(0));

function soakTable(r: TargetResult): string[] {
  const apps = Object.keys(r.soak[0]?.peaks.peak ?? {});
  const head = `| run | exit | specs | s | ${apps.map((a) => `${a} peak`).join(' | ')} | ${apps.map((a) => `${a} after`).join(' | ')} |`;
  const rows = r.soak.map(
    (s) => `| ${s.run} | ${s.code} | ${s.failed} | ${s.seconds.toFixed(0)} | ${apps.map((a) => mb(s.peaks.peak[a])).join(' | ')} | ${apps.map((a) => mb(s.peaks.after[a])).join(' | ')} |`,
  );
  return [head, `|${' --- |'.repeat(4 + 2 * apps.length)}`, ...rows];
}

function riseTable(rows: [string, AppPeaks][]): string[] {
  const apps = Object.keys(rows[0][1].peak);
  return [
    `| load | ${apps.map((a) => `${a} before → peak (rise)`).join(' | ')} |`,
    `|${' --- |'.repeat(1 + apps.length)}`,
    ...rows.map(([label, p]) => `| ${label} | ${apps.map((a) => `${mb(p.start[a])} → ${mb(p.peak[a])} (+${mb(p.peak[a] - p.start[a])})`).join(' | ')} |`),
  ];
}

function maxRise(p: AppPeaks | undefined): number | undefined {
  return p && Math.max(...Object.values(rise(p)));
}

function report(results: TargetResult[], facts: string[]): string {
  const lines = ['# Memory: Lading vs the reference registry', '', ...facts.map((f) => `- ${f}`), ''];
  const by = (n: string) => results.find((r) => r.name === n);
  const soakMax = (r: TargetResult | undefined) => (r && r.soak.length ? Math.max(...r.soak.flatMap((s) => Object.values(s.peaks.peak))) : undefined);
  const growth = (r: TargetResult | undefined) => {
    if (!r || r.soak.length < 2) return undefined;
    const peakOf = (i: number) => Math.max(...Object.values(r.soak[i].peaks.peak));
    return peakOf(r.soak.length - 1) - peakOf(1);
  };
  const ref = soakMax(by('reference'));
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : '**not met**');
  const ratio = (v: number | undefined) => (v === undefined || ref === undefined ? '—' : `${(v / ref).toFixed(1)}×`);
  const e = by('embedded');
  const s = by('split');
  const rows: [string, number | undefined, string, boolean | undefined][] = [
    [`embedded peak RSS over ${RUNS} conformance runs ≤ ${EMBEDDED_SOAK_PEAK_MB} MB`, soakMax(e), ratio(soakMax(e)), soakMax(e) === undefined ? undefined : soakMax(e)! <= EMBEDDED_SOAK_PEAK_MB],
    ['embedded: no growth, peak of the last run − peak of run 2 (MB)', growth(e), '', growth(e) === undefined ? undefined : growth(e)! <= 8],
    [`each split process's peak RSS over ${RUNS} runs ≤ ${SPLIT_SOAK_PEAK_MB} MB (the largest)`, soakMax(s), ratio(soakMax(s)), soakMax(s) === undefined ? undefined : soakMax(s)! <= SPLIT_SOAK_PEAK_MB],
    ['split: no growth, last run − run 2 (MB, the largest process)', growth(s), '', growth(s) === undefined ? undefined : growth(s)! <= 8],
  ];
  for (const r of [e, s]) {
    if (!r) continue;
    rows.push([`${r.name}: one 3.9 MB manifest PUT adds ≤ ${RISE_MB} MB to any process`, maxRise(r.manifest?.one), '', maxRise(r.manifest?.one) === undefined ? undefined : maxRise(r.manifest?.one)! <= RISE_MB]);
    rows.push([`${r.name}: three concurrent ones (bounded, not ×3)`, maxRise(r.manifest?.three), '', undefined]);
    rows.push([`${r.name}: a ${(BLOB_BYTES / GiB).toFixed(0)} GiB push adds ≤ ${RISE_MB} MB to any process`, maxRise(r.transfer?.push), '', maxRise(r.transfer?.push) === undefined ? undefined : maxRise(r.transfer?.push)! <= RISE_MB]);
    rows.push([`${r.name}: a ${(BLOB_BYTES / GiB).toFixed(0)} GiB pull adds ≤ ${RISE_MB} MB to any process`, maxRise(r.transfer?.pull), '', maxRise(r.transfer?.pull) === undefined ? undefined : maxRise(r.transfer?.pull)! <= RISE_MB]);
  }
  lines.push('## Targets', '', '| target | Lading (MB) | / reference peak | met? |', '| --- | ---: | ---: | :---: |');
  for (const [label, v, rat, ok] of rows) lines.push(`| ${label} | ${mb(v)} | ${rat} | ${verdict(ok)} |`);
  lines.push('', `Reference peak RSS over its ${RUNS} runs: ${mb(ref)} MB.`, '');
  for (const r of results) {
    lines.push(`## ${r.name}`, '');
    if (r.soak.length) lines.push(`### Conformance soak (peak RSS per run, MB; VmHWM reset before each run)`, '', ...soakTable(r), '');
    const rr: [string, AppPeaks][] = [];
    if (r.manifest) rr.push([`one ${(r.manifest.bytes / MB).toFixed(1)} MB manifest PUT`, r.manifest.one], ['three concurrent ones', r.manifest.three]);
    if (r.transfer) rr.push([`${(BLOB_BYTES / GiB).toFixed(0)} GiB push`, r.transfer.push], [`${(BLOB_BYTES / GiB).toFixed(0)} GiB pull`, r.transfer.pull]);
    if (rr.length) lines.push('### Large manifest and large blob (RSS, MB; fresh registry, warmed up)', '', ...riseTable(rr), '');
  }
  lines.push(
    '## Notes',
    '',
    '- MB = 10^6 bytes. Peaks are each process\'s VmHWM, reset (`echo 5 > /proc/<pid>/clear_refs`) just before the measured interval, with VmRSS sampled every 20 ms as a cross-check.',
    '- The soak runs the OCI conformance suite (pull, push, content discovery, content management) back to back on one registry; the large-manifest and transfer parts run on a fresh registry of their own.',
    '- Split: gateway, blob-upload, manifests, notifications and gc-worker on a new database of the test PostgreSQL, filesystem storage; embedded: PGlite created by `lading migrate` first.',
  );
  if (process.env.BENCH_NOTE) lines.push(`- ${process.env.BENCH_NOTE}`);
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  // Children inherit it (registries.ts spreads process.env); this process is already started.
  if (process.env.BENCH_MEMORY_NODE_OPTIONS) process.env.NODE_OPTIONS = process.env.BENCH_MEMORY_NODE_OPTIONS;
  const load0 = loadavg().map((l) => l.toFixed(2)).join(' / ');
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const results: TargetResult[] = [];
  for (const name of TARGETS) {
    const result: TargetResult = { name, soak: [] };
    results.push(result);
    if (PARTS.includes('soak')) {
      log(`${name}: soak, ${RUNS} conformance runs`);
      const target = await start(name);
      try {
        await soak(target, result);
      } finally {
        await target.stop();
      }
    }
    for (const [part, fn] of [['manifest', manifestCase], ['transfer', transfer]] as const) {
      if (!PARTS.includes(part)) continue;
      log(`${name}: ${part}`);
      const target = await start(name);
      try {
        await fn(target, result);
      } finally {
        await target.stop();
      }
    }
  }
  const facts = [
    `Date: ${new Date().toISOString()}; Lading commit ${commit}; Node ${process.version}`,
    `Command: \`eval "$(bash scripts/services env)"; bench/memory\` (BENCH_MEMORY_RUNS=${RUNS}, targets ${TARGETS.join(',')}, parts ${PARTS.join(',')}${process.env.BENCH_MEMORY_NODE_OPTIONS ? `, Lading's NODE_OPTIONS=${process.env.BENCH_MEMORY_NODE_OPTIONS}` : ''})`,
    `Load average (1/5/15 min) before: ${load0}; after: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`,
  ];
  const text = report(results, facts);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, text);
  process.stdout.write(text);
  log(`wrote ${relative(ROOT, OUT)}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}
main().then(
  () => stopAll(),
  async (e) => {
    console.error(e);
    await stopAll();
    process.exit(1);
  },
);
