/**
 * Tracing overhead (issue 10 §5): embedded Lading with tracing off, then exporting OTLP to the real
 * Jaeger at 10 % sampling (`parentbased_traceidratio`, 0.1) and at 100 %, over two workloads: a
 * manifest GET by tag under `wrk` (32 connections: requests/s and p99 latency) and a 1 GiB blob
 * push with `curl` (POST, `curl -T` the file as one PATCH, PUT `?digest=`: seconds and MB/s).
 * Five rounds. In each, every mode's server is started at once and the GETs are interleaved: wrk
 * slices of 2 s taking turns, so the machine's changing load falls on every mode alike; then each
 * mode's push on a fresh server, one after another. Medians, each mode's ratio to off, and the median of each round's own ratio
 * (what the target reads). Not a
 * test: numbers, and whether the issue's target (≤ 5 % cost at 10 %) is met.
 *
 *   bash scripts/services start jaeger     # unless it runs
 *   eval "$(bash scripts/services env)"
 *   bench/tracing                          # about 15 minutes; BENCH_SCALE=small: 64 MiB, 5 s, about 4
 *
 * Environment:
 *   BENCH_SCALE   `full` (default: 1 GiB, wrk 10 s, 5 rounds), `small` (64 MiB, 5 s, 2 rounds) or `ab`
 *                 (the GET only, 5 s, 6 rounds: a quick A/B of a change)
 *   BENCH_MODES   the modes besides off, comma-separated (default `10 %,100 %`; also `none sampled`:
 *                 the SDK loaded with `always_off`)
 *   BENCH_OUT     the markdown (default bench/results/latest-tracing.md at full scale, latest-tracing-<scale>.md otherwise)
 *   BENCH_WARMUP  seconds of unmeasured wrk before each GET measurement (default 2). The sampled path
 *                 of 10 % runs one request in ten, so V8 takes longer to optimise it: after 2 s much of
 *                 it is still unoptimised, after 40 s most of it is (see bench/README.md)
 *   BENCH_NOTE    a sentence for the notes
 *
 * The report goes to stdout and the file, progress to stderr. Exits 0 unless something broke.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { once } from 'node:events';
import { Client } from 'undici';
import { BlobSource } from './blob-source';
import { OCI_MANIFEST, pushBlob, putManifest, startUpload } from './oci-client';
import { cpuSecondsOf } from './proc-stats';
import { ROOT, startLadingEmbedded, stopAll, type Target } from './registries';
import { GiB, MB, MiB, percentile } from './stats';
import { wrk } from './wrk';

const WARMUP_SECONDS = warmupSeconds(process.env.BENCH_WARMUP);
/** The length of one measured wrk slice of the interleaved GET workload, in seconds. */
const SLICE_SECONDS = 2;

function warmupSeconds(value: string | undefined): number {
  const s = value === undefined || value === '' ? 2 : Number(value);
  if (!Number.isInteger(s) || s < 1) throw new Error(`BENCH_WARMUP must be a whole number of seconds ≥ 1, not "${value}"`);
  return s;
}

const log = (message: string) => console.error(`[bench tracing] ${message}`);

interface TracingScale {
  name: string;
  blobSize: number;
  wrkSeconds: number;
  rounds: number;
}

const SCALES: Record<string, TracingScale> = {
  full: { name: 'full', blobSize: GiB, wrkSeconds: 10, rounds: 5 },
  small: { name: 'small', blobSize: 64 * MiB, wrkSeconds: 5, rounds: 2 },
  /** Quick A/B of the GET's CPU per request: no push, many short rounds. */
  ab: { name: 'ab', blobSize: 0, wrkSeconds: 5, rounds: 6 },
};

/** A tracing setting, as the environment of the registry process. */
interface Mode {
  name: string;
  env: Record<string, string>;
}

function modes(otlp: string): Mode[] {
  const on = (ratio: string): Record<string, string> => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: ratio,
    OTEL_SERVICE_NAME: 'lading-bench',
  });
  const all = [
    { name: 'off', env: {} },
    // The SDK and every instrumentation loaded, nothing sampled: what is paid before any span is recorded.
    { name: 'none sampled', env: { ...on('0'), OTEL_TRACES_SAMPLER: 'always_off' } },
    { name: '10 %', env: on('0.1') },
    { name: '100 %', env: on('1') },
  ];
  const wanted = process.env.BENCH_MODES?.split(',').map((m) => m.trim());
  return wanted ? all.filter((m) => m.name === 'off' || wanted.includes(m.name)) : all.filter((m) => m.name !== 'none sampled');
}

interface Sample {
  mode: string;
  round: number;
  getRps: number;
  getP99Ms: number;
  getCpuUsPerRequest: number;
  pushSeconds: number;
  pushCpuSeconds: number;
}

const REPO = 'bench/tracing';
const TAG = 'latest';

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((ok, fail) =>
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * MiB }, (e, out, err) =>
      e ? fail(new Error(`${command} ${args.join(' ')}: ${e.message}\n${err}`)) : ok(out),
    ),
  );
}

/** A small image tagged `latest`: what the GET workload reads. */
async function pushImage(client: Client): Promise<void> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layer = Buffer.alloc(1024, 7);
  const blob = (b: Buffer) => ({
    digest: `sha256:${createHash('sha256').update(b).digest('hex')}`,
    size: b.length,
    body: b,
  });
  await pushBlob(client, REPO, blob(config));
  await pushBlob(client, REPO, blob(layer));
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...descriptor(blob(config)) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...descriptor(blob(layer)) }],
  };
  await putManifest(client, REPO, TAG, Buffer.from(JSON.stringify(manifest)));
}

function descriptor(b: { digest: string; size: number }): { digest: string; size: number } {
  return { digest: b.digest, size: b.size };
}

/** What the GET workload reads: the small image's manifest by tag. */
const manifestUrl = (target: Target) => `${target.url}/v2/${REPO}/manifests/${TAG}`;

/** One measured wrk slice against `target`: its requests, wall seconds, p99 (ms), and the server's CPU seconds over it. */
async function getSlice(target: Target, seconds: number): Promise<{ requests: number; seconds: number; p99: number; cpu: number }> {
  const cpu0 = cpuOf(target);
  const r = await wrk(manifestUrl(target), 32, seconds, [`Accept: ${OCI_MANIFEST}`]);
  const cpu = cpuOf(target) - cpu0;
  if (r.non2xx > 0 || r.socketErrors > 0) throw new Error(`wrk: ${r.non2xx} answers were not 2xx, ${r.socketErrors} socket errors`);
  return { requests: r.requests, seconds: r.seconds, p99: r.p99, cpu };
}

/**
 * The GET workload of one round, interleaved: every mode's server is up at once and idle but for
 * its own slices; each gets `seconds` of wrk in slices of {@link SLICE_SECONDS}, taking turns (the
 * order rotating from slice to slice), so a change in the machine's load falls on every mode alike
 * instead of on whichever ran at that minute. Per mode: requests/s and CPU per request over all its
 * slices, p99 the median of its slices' p99s.
 */
async function manifestGetsInterleaved(targets: Target[], seconds: number): Promise<{ rps: number; p99: number; cpuUs: number; slices: string[] }[]> {
  // The warm-up takes turns too: a server left idle while the others warm up serves its next
  // seconds at up to 1.6× the CPU per request (V8 shrinks an idle heap and lets go of code; a 40 s
  // pause measured 836 against 570 µs), and that would fall on whichever mode went first.
  const warmSlices = Math.max(1, Math.round(WARMUP_SECONDS / SLICE_SECONDS));
  for (let i = 0; i < warmSlices; i++) for (const t of targets) await wrk(manifestUrl(t), 32, SLICE_SECONDS, [`Accept: ${OCI_MANIFEST}`]);
  const slices = Math.max(1, Math.round(seconds / SLICE_SECONDS));
  const acc = targets.map(() => ({ requests: 0, seconds: 0, cpu: 0, p99s: [] as number[], slices: [] as string[] }));
  for (let i = 0; i < slices; i++) {
    for (let j = 0; j < targets.length; j++) {
      const k = (i + j) % targets.length;
      const s = await getSlice(targets[k], SLICE_SECONDS);
      acc[k].requests += s.requests;
      acc[k].seconds += s.seconds;
      acc[k].cpu += s.cpu;
      acc[k].p99s.push(s.p99);
      acc[k].slices.push(`${(s.requests / s.seconds).toFixed(0)} req/s ${((s.cpu / s.requests) * 1e6).toFixed(0)} µs`);
    }
  }
  return acc.map((a) => ({ rps: a.requests / a.seconds, p99: median(a.p99s), cpuUs: (a.cpu / a.requests) * 1e6, slices: a.slices }));
}

function cpuOf(target: Target): number {
  return cpuSecondsOf(target.pids());
}

/** POST, `curl -T` the whole file as one PATCH, PUT `?digest=`: seconds end to end, and the server's CPU. */
async function bigPush(
  target: Target,
  client: Client,
  file: string,
  digest: string,
): Promise<{ seconds: number; cpu: number }> {
  const cpu0 = cpuOf(target);
  const t0 = performance.now();
  const location = `${target.url}${await startUpload(client, REPO)}`;
  const patched = await run(
    'curl',
    [
      '-sS',
      '-f',
      '-X',
      'PATCH',
      '-T',
      file,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      'Expect:',
      '-D',
      '-',
      '-o',
      '/dev/null',
      location,
    ],
    10 * 60_000,
  );
  const next = /^location:\s*(\S+)/im.exec(patched)?.[1];
  if (!next) throw new Error(`PATCH answered without a Location:\n${patched}`);
  const put = new URL(next, target.url);
  put.searchParams.set('digest', digest);
  const res = await client.request({
    method: 'PUT',
    path: `${put.pathname}${put.search}`,
    headers: { 'content-length': '0' },
  });
  const body = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT ?digest=: ${res.statusCode} ${body}`);
  return { seconds: (performance.now() - t0) / 1000, cpu: cpuOf(target) - cpu0 };
}

/** Writes a blob of `size` bytes to a file; its digest. */
async function writeBlobFile(file: string, size: number): Promise<string> {
  const source = new BlobSource();
  const spec = source.create(size);
  const out = createWriteStream(file);
  for await (const chunk of source.chunks(spec)) if (!out.write(chunk)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  return spec.digest;
}

/**
 * One round: every mode's server started at once, the interleaved GETs, all stopped; then each
 * mode's push on a fresh server of its own, one after another, with nothing else running (a push
 * beside the other modes' servers, each still relaying and pruning the pull events of its GETs,
 * took 3.4 to 7.6 s where a push alone takes 2.4 to 3.0).
 */
async function measureRound(order: Mode[], round: number, scale: TracingScale, file: string, digest: string): Promise<Sample[]> {
  log(`round ${round}: starting ${order.map((m) => m.name).join(', ')}`);
  const targets: Target[] = [];
  let gets: Awaited<ReturnType<typeof manifestGetsInterleaved>>;
  try {
    for (const mode of order) {
      const target = await startLadingEmbedded(`tracing ${mode.name}`, { driver: 'filesystem' }, 'pglite', mode.env);
      targets.push(target);
      const client = new Client(target.url);
      try {
        await pushImage(client);
      } finally {
        await client.close();
      }
    }
    gets = await manifestGetsInterleaved(targets, scale.wrkSeconds);
  } finally {
    for (const t of targets) await t.stop();
  }
  const samples: Sample[] = [];
  for (const [i, mode] of order.entries()) {
    const get = gets[i];
    log(`  ${mode.name} GET: ${get.rps.toFixed(0)} req/s, p99 ${get.p99.toFixed(2)} ms, ${get.cpuUs.toFixed(0)} µs CPU/request (slices: ${get.slices.join(', ')})`);
    const push = scale.blobSize > 0 ? await freshPush(mode, file, digest) : { seconds: NaN, cpu: NaN };
    if (scale.blobSize > 0) log(`  ${mode.name} push: ${push.seconds.toFixed(2)} s, ${push.cpu.toFixed(2)} s CPU`);
    samples.push({
      mode: mode.name,
      round,
      getRps: get.rps,
      getP99Ms: get.p99,
      getCpuUsPerRequest: get.cpuUs,
      pushSeconds: push.seconds,
      pushCpuSeconds: push.cpu,
    });
  }
  return samples;
}

/** The big push on a fresh server with `mode`'s tracing, stopped after. */
async function freshPush(mode: Mode, file: string, digest: string): Promise<{ seconds: number; cpu: number }> {
  const target = await startLadingEmbedded(`tracing ${mode.name} push`, { driver: 'filesystem' }, 'pglite', mode.env);
  const client = new Client(target.url);
  try {
    return await bigPush(target, client, file, digest);
  } finally {
    await client.close();
    await target.stop();
  }
}

const median = (xs: number[]) => percentile(xs, 50);

function render(samples: Sample[], scale: TracingScale, facts: string[], note: string | undefined): string {
  const names = [...new Set(samples.map((s) => s.mode))];
  const med = (mode: string, key: keyof Sample) =>
    median(samples.filter((s) => s.mode === mode).map((s) => s[key] as number));
  const rows: [string, keyof Sample, (v: number) => number, number, string][] = [
    ['manifest GET by tag, requests/s ↑', 'getRps', (v) => v, 0, ''],
    ['manifest GET by tag, p99 latency (ms) ↓', 'getP99Ms', (v) => v, 2, ''],
    ['manifest GET by tag, server CPU per request (µs) ↓', 'getCpuUsPerRequest', (v) => v, 0, ''],
    [
      `${scale.blobSize / GiB >= 1 ? `${scale.blobSize / GiB} GiB` : `${scale.blobSize / MiB} MiB`} push, seconds ↓`,
      'pushSeconds',
      (v) => v,
      2,
      '',
    ],
    ['push throughput (MB/s) ↑', 'pushSeconds', (v) => scale.blobSize / MB / v, 1, ''],
    ['push, server CPU (s) ↓', 'pushCpuSeconds', (v) => v, 2, ''],
  ];
  const lines = [
    '## Tracing overhead',
    '',
    ...facts.map((f) => `- ${f}`),
    '',
    `| metric (median of ${scale.rounds} rounds) | ${names.join(' | ')} | ${names
      .slice(1)
      .map((n) => `${n} / off`)
      .join(' | ')} |`,
    `| --- | ${names.map(() => '---:').join(' | ')} | ${names
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ];
  for (const [label, key, f, digits] of rows.filter(([, key]) => scale.blobSize > 0 || !key.startsWith('push'))) {
    const values = names.map((n) => f(med(n, key)));
    lines.push(
      `| ${label} | ${values.map((v) => v.toFixed(digits)).join(' | ')} | ${values
        .slice(1)
        .map((v) => `${(v / values[0]).toFixed(3)}×`)
        .join(' | ')} |`,
    );
  }
  // Each round runs its modes back to back, so a round's ratio compares runs minutes apart at most,
  // under much the same load of the machine; the median of those ratios is what the target reads
  // (the ratio of the medians above mixes rounds that ran under different loads).
  const roundRatio = (mode: string, key: keyof Sample, f: (v: number) => number) =>
    median(
      [...new Set(samples.map((s) => s.round))].flatMap((r) => {
        const off = samples.find((s) => s.round === r && s.mode === 'off');
        const other = samples.find((s) => s.round === r && s.mode === mode);
        return off && other ? [f(other[key] as number) / f(off[key] as number)] : [];
      }),
    );
  const paired = rows.filter(([, key]) => scale.blobSize > 0 || !key.startsWith('push'));
  lines.push(
    '',
    `| metric (median of the ${scale.rounds} rounds' own ratios) | ${names
      .slice(1)
      .map((n) => `${n} / off`)
      .join(' | ')} |`,
    `| --- | ${names
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
    ...paired.map(([label, key, f]) => `| ${label} | ${names.slice(1).map((n) => `${roundRatio(n, key, f).toFixed(3)}×`).join(' | ')} |`),
  );
  const cost = (key: keyof Sample, f: (v: number) => number, higherBetter: boolean) => {
    const ratio = roundRatio('10 %', key, f);
    const c = higherBetter ? 1 - ratio : ratio - 1;
    return Number.isNaN(c) ? -Infinity : c;
  };
  const worst = Math.max(
    cost('getRps', (v) => v, true),
    cost('getP99Ms', (v) => v, false),
    cost('getCpuUsPerRequest', (v) => v, false),
    cost('pushSeconds', (v) => v, false),
  );
  lines.push(
    '',
    `**Target ≤ 5 % cost at 10 % sampling:** ${worst <= 0.05 ? 'met' : 'missed'} (worst of GET requests/s, GET p99, GET CPU per request and push time, each the median of the rounds' own ratios: ${(worst * 100).toFixed(1)} %).`,
    '',
    '### Every round',
    '',
    '| round | tracing | GET req/s | GET p99 (ms) | GET CPU/request (µs) | push (s) | push CPU (s) |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...samples.map(
      (s) =>
        `| ${s.round} | ${s.mode} | ${s.getRps.toFixed(0)} | ${s.getP99Ms.toFixed(2)} | ${s.getCpuUsPerRequest.toFixed(0)} | ${s.pushSeconds.toFixed(2)} | ${s.pushCpuSeconds.toFixed(2)} |`,
    ),
    '',
    '### Notes',
    '',
    `- Each round starts one fresh embedded Lading per mode (\`lading serve\`: PGlite, filesystem storage, log level \`warn\`, so no access log), all at once, and pushes a small image to each. The GETs: ${SLICE_SECONDS} s wrk slices taking turns, first ${WARMUP_SECONDS} s unmeasured on each, then measured ones (the order rotating each time) until each mode has had ${scale.wrkSeconds} s; the servers not being measured sit idle. Requests/s and CPU per request are over a mode's slices together, p99 is the median of its slices' p99s. Then all are stopped, and each mode's push runs on a fresh server of its own, one after another. The order of the modes alternates from round to round. (Until stop 22 each mode ran alone, one after another; minutes apart, the load of the machine's other users differed by more than the cost measured.)`,
    '- Tracing on: `OTEL_EXPORTER_OTLP_ENDPOINT` = the real Jaeger of `scripts/services` (OTLP/HTTP on 127.0.0.1), `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG` 0.1 or 1; the batch processor at its defaults. Off: no `OTEL_*` variable, so no SDK is loaded.',
    '- wrk: 2 threads, 32 connections, `--latency` (p99 from its distribution), `Accept` the OCI manifest type. The push: one `curl -T` PATCH of the whole file, then `PUT ?digest=`; seconds from the POST to the 201.',
    '- Server CPU: utime + stime of the registry process over the measurement (from /proc), which the load of other users of the machine does not inflate as much as wall-clock numbers.',
    '- The machine has 2 cores shared with other work (see the load averages); wrk and curl run on the same cores as the server.',
    ...(note ? [`- ${note}`] : []),
  );
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const scale = SCALES[process.env.BENCH_SCALE ?? 'full'];
  if (!scale) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}`);
  const otlp = process.env.LADING_TEST_JAEGER_OTLP;
  if (!otlp)
    throw new Error(
      'LADING_TEST_JAEGER_OTLP is not set: `bash scripts/services start jaeger`, then `eval "$(bash scripts/services env)"`',
    );
  // The modes set tracing themselves: nothing of the caller's environment may turn it on.
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
  const out =
    process.env.BENCH_OUT ??
    join(ROOT, 'bench/results', scale.name === 'full' ? 'latest-tracing.md' : `latest-tracing-${scale.name}.md`);
  const dir = mkdtempSync(join(tmpdir(), 'lading-bench-tracing-'));
  const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
  const loadBefore = uptime();
  try {
    const file = join(dir, 'blob');
    log(`writing a ${scale.blobSize} byte blob`);
    const digest = scale.blobSize > 0 ? await writeBlobFile(file, scale.blobSize) : '';
    const all = modes(otlp);
    const samples: Sample[] = [];
    for (let round = 1; round <= scale.rounds; round++) {
      const order = round % 2 === 1 ? all : [...all].reverse();
      samples.push(...(await measureRound(order, round, scale, file, digest)));
    }
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const facts = [
      `${new Date().toISOString()}, Lading commit ${commit}, ${process.version}, nproc ${availableParallelism()} (${cpus()[0]?.model.trim()}), ${(totalmem() / GiB).toFixed(1)} GiB RAM`,
      `scale ${scale.name}: ${scale.rounds} rounds, wrk ${scale.wrkSeconds} s per mode, a ${scale.blobSize / MiB} MiB push`,
      `load before: \`${loadBefore}\``,
      `load after: \`${uptime()}\` (loadavg ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')})`,
    ];
    const report = render(samples, scale, facts, process.env.BENCH_NOTE);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, report);
    process.stdout.write(report);
    log(`written to ${relative(ROOT, out)}`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (e) => {
  console.error(e instanceof Error ? e.stack : e);
  await stopAll();
  process.exit(1);
});
