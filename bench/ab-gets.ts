/**
 * A/B of small-request cost between two trees of Lading (each with its own dist/): starts both in
 * `mode` (embedded | split), seeds a manifest and a 4 KiB blob in each, then alternates wrk runs
 * A, B, B, A, ... and prints requests/s, p99 and the server CPU per request (utime+stime from /proc).
 * Usage (from the repository, services env loaded; each root a checkout with its own dist/, say
 * `git archive <commit> | tar -x -C /tmp/base` with node_modules linked):
 *   SWC_NODE_PROJECT=$PWD/tsconfig.base.json node -r @swc-node/register bench/ab-gets.ts <rootA> <rootB> <embedded|split> [runs] [manifest|blob]
 * AB_SECONDS (5) per run; AB_DB=postgres for embedded on PostgreSQL; AB_ENV a JSON object of
 * settings for every process; AB_PROFILE=1 with NODE_OPTIONS="--require $PWD/bench/cpu-profile-hook.js"
 * profiles the first run of each target (SIGWINCH to each of its processes around it).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Client } from 'undici';
import { OCI_MANIFEST, pushBlob, putManifest } from './oci-client';
import type { Target } from './registries';

const [rootA, rootB, mode = 'embedded', runsArg = '5', what = 'manifest'] = process.argv.slice(2);
const runs = Number(runsArg);
const seconds = Number(process.env.AB_SECONDS ?? 5);
const TICK = 100;

function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function seed(url: string): Promise<string> {
  const client = new Client(url);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const blob = Buffer.alloc(4096, 7);
  await pushBlob(client, 'bench/wrk', { digest: digestOf(config), size: config.length, body: config });
  await pushBlob(client, 'bench/wrk', { digest: digestOf(blob), size: blob.length, body: blob });
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(blob), size: blob.length }],
  };
  await putManifest(client, 'bench/wrk', 'wrk', Buffer.from(JSON.stringify(manifest)));
  await client.close();
  return digestOf(blob);
}

function wrk(url: string, secs: number): { rps: number; requests: number; p99: string } {
  const args = ['-t2', '-c32', `-d${secs}s`, '--latency', '-H', `Accept: ${OCI_MANIFEST}`, url];
  const out = execFileSync('/usr/bin/wrk', args, { encoding: 'utf8' });
  if (/Non-2xx|Socket errors/.test(out) || !/ [1-9]\d* requests in/.test(out)) throw new Error(`non-2xx:\n${out}`);
  const requests = Number(/(\d+) requests in/.exec(out)![1]);
  return { requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p99: /^\s+99%\s+(\S+)/m.exec(out)![1] };
}

async function start(root: string, name: string): Promise<Target> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const reg = require(`${root}/bench/registries.ts`) as typeof import('./registries');
  const extra = process.env.AB_ENV ? (JSON.parse(process.env.AB_ENV) as Record<string, string>) : {};
  return mode === 'split'
    ? reg.startLadingSplit(name, { driver: 'filesystem' }, extra)
    : reg.startLadingEmbedded(name, { driver: 'filesystem' }, (process.env.AB_DB as 'postgres') ?? 'pglite', extra);
}

async function main(): Promise<void> {
  const targets = [await start(rootA, 'A'), await start(rootB, 'B')];
  const stats: Record<string, { cpu: number[]; rps: number[]; p99: string[]; per: Record<string, number[]> }> = {};
  try {
    const urls: string[] = [];
    for (const t of targets) {
      const digest = await seed(t.url);
      urls.push(what === 'blob' ? `${t.url}/v2/bench/wrk/blobs/${digest}` : `${t.url}/v2/bench/wrk/manifests/wrk`);
      wrk(urls[urls.length - 1], 3); // warm-up
      stats[t.name] = { cpu: [], rps: [], p99: [], per: {} };
    }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        const t = targets[k];
        const apps = t.apps();
        const before = Object.fromEntries(Object.entries(apps).map(([a, ps]) => [a, ps.reduce((s, p) => s + cpuOf(p), 0)]));
        const profile = process.env.AB_PROFILE === '1' && i === 0;
        const sig = () => Object.values(apps).flat().forEach((p) => process.kill(p, 'SIGWINCH'));
        if (profile) sig();
        const r = wrk(urls[k], seconds);
        if (profile) sig();
        const s = stats[t.name];
        let total = 0;
        for (const [a, ps] of Object.entries(apps)) {
          const used = ((ps.reduce((sum, p) => sum + cpuOf(p), 0) - before[a]) * 1e6) / r.requests;
          (s.per[a] ??= []).push(used);
          total += used;
        }
        s.cpu.push(total);
        s.rps.push(r.rps);
        s.p99.push(r.p99);
        const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
        console.log(`${t.name} run ${i}: ${r.rps.toFixed(0)} req/s p99 ${r.p99} cpu/req ${total.toFixed(0)} us  load ${load}`);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const [name, s] of Object.entries(stats)) {
      const per = Object.entries(s.per)
        .map(([a, xs]) => `${a} ${med(xs).toFixed(0)}`)
        .join(', ');
      console.log(`${name} (${name === 'A' ? rootA : rootB}) ${mode} ${what}: median ${med(s.rps).toFixed(0)} req/s, cpu/req ${med(s.cpu).toFixed(0)} us [${per}], p99 ${s.p99.join(' ')}`);
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
