/**
 * Starts the reference registry, Lading embedded (PGlite) and Lading split (filesystem, the
 * test PostgreSQL), pushes one small image into each and prints the URLs of its manifest and
 * small blob, then serves until SIGINT: for profiling and hand-run wrk. HOT_TARGETS picks
 * (`reference,embedded,embedded-pg,split`; default all but embedded-pg). HOT_NODE_OPTIONS becomes
 * NODE_OPTIONS of every Lading process: Node 20 refuses `--cpu-prof` there, so profile with a
 * `--require` of a script that starts and stops an `inspector` Session's Profiler on a signal
 * (not SIGUSR2 or another that Nest's shutdown hooks take: SIGWINCH works).
 *
 *   SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register bench/hot-serve.ts
 */
import { createHash } from 'node:crypto';
import { Client } from 'undici';
import { OCI_MANIFEST, pushBlob, putManifest } from './oci-client';
import { REFERENCE_BIN, startLadingEmbedded, startLadingSplit, startReference, stopAll, type Target } from './registries';

async function seed(t: Target): Promise<void> {
  const client = new Client(t.url);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layer = Buffer.alloc(4096, 7);
  const d = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  await pushBlob(client, 'hot/image', { digest: d(config), size: config.length, body: config });
  await pushBlob(client, 'hot/image', { digest: d(layer), size: layer.length, body: layer });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d(layer), size: layer.length }],
  }));
  await putManifest(client, 'hot/image', 'v1', manifest);
  await client.close();
  console.log(`${t.name} ${t.url}/v2/hot/image/manifests/v1 ${t.url}/v2/hot/image/blobs/${d(layer)} pids ${JSON.stringify(t.apps())}`);
}

async function main(): Promise<void> {
  const extra: Record<string, string> = process.env.HOT_NODE_OPTIONS ? { NODE_OPTIONS: process.env.HOT_NODE_OPTIONS } : {};
  const which = (process.env.HOT_TARGETS ?? 'reference,embedded,split').split(',');
  const targets: Target[] = [];
  if (which.includes('reference')) targets.push(await startReference(REFERENCE_BIN));
  if (which.includes('embedded')) targets.push(await startLadingEmbedded('embedded', { driver: 'filesystem' }, 'pglite', extra));
  if (which.includes('embedded-pg')) targets.push(await startLadingEmbedded('embedded-pg', { driver: 'filesystem' }, 'postgres', extra));
  if (which.includes('split')) targets.push(await startLadingSplit('split', { driver: 'filesystem' }, extra));
  for (const t of targets) await seed(t);
  console.log('READY');
  // A process that dies under load: say so, with its output.
  const watch = setInterval(() => {
    for (const t of targets)
      for (const [app, pids] of Object.entries(t.apps()))
        if (pids.length === 0) {
          console.log(`${t.name}/${app} exited:\n${t.log().slice(-4000)}`);
          clearInterval(watch);
        }
  }, 1000);
  await new Promise<void>((ok) => process.once('SIGINT', () => ok()));
  await stopAll();
}

main().catch(async (e) => {
  console.error(e);
  await stopAll();
  process.exit(1);
});
