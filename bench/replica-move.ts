/*
 * What it costs when the final PUT of an upload lands on another blob-upload replica than the
 * PATCH that carried its bytes (what a load balancer does to `docker push` about half the time
 * with two replicas): the split stack on PostgreSQL + MinIO with two blob-upload replicas, each
 * behind its own gateway; one PATCH of the whole blob through replica 1, then `PUT ?digest=`
 * through replica 2. Run three times: the PUT on replica 1 itself (the commit alone, the
 * baseline), on replica 2 with hash checkpoints (the default: replica 2 loads the saved state)
 * and with `services.blobupload.hashcheckpoints: false` (replica 2 re-reads and re-hashes every
 * stored byte). Reports the PATCH throughput (the shadow hash's cost on the way in), the
 * PUT's latency (the move's cost), and the blob-upload processes' CPU. Not a test: numbers.
 *
 *   eval "$(bash scripts/services env)"
 *   SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register bench/replica-move.ts [MiB]
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startSplit, type LadingProcess } from '../test/support/registry-processes';
import { withDb } from '../test/support/robustness-stack';
import { RepeatedBlob } from '../test/support/robustness-streams';
import { purgeS3Root, s3RegistryEnv } from '../test/support/s3';
import { cpuSecondsOf } from './proc-stats';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 1024) * MiB;

/** CPU time of the processes, every thread (the hashing worker too). */
function cpuSeconds(processes: LadingProcess[]): number {
  return cpuSecondsOf(processes.map((p) => p.proc.pid!));
}

async function run(label: string, checkpoints: boolean, putOn: 1 | 2, blob: RepeatedBlob, digest: string): Promise<string> {
  const root = `bench-replica-move/${randomUUID()}`;
  const stack = await startSplit({
    env: {
      ...s3RegistryEnv(root, 16 * MiB),
      LADING_STORAGE_REDIRECT_DISABLE: 'true',
      LADING_SERVICES_BLOBUPLOAD_HASHCHECKPOINTS: String(checkpoints),
    },
    withWorkers: false,
  });
  try {
    const bu2 = await stack.startExtra('blob-upload');
    const gw2 = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: bu2.url });
    const uploaders = [stack.apps['blob-upload'], bu2];
    const started = await request(`${stack.url}/v2/bench/move/blobs/uploads/`, { method: 'POST' });
    await started.body.dump();
    const location = new URL(String(started.headers.location), stack.url);
    const id = String(started.headers['docker-upload-uuid']);

    const cpu0 = cpuSeconds(uploaders);
    let t = process.hrtime.bigint();
    const patch = await request(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), 'content-range': `0-${size - 1}` },
      body: Readable.from(blob.bytes()),
    });
    await patch.body.dump();
    if (patch.statusCode !== 202) throw new Error(`PATCH: ${patch.statusCode}`);
    const patchS = Number(process.hrtime.bigint() - t) / 1e9;
    const cpu1 = cpuSeconds(uploaders);
    const offset = await withDb(stack.databaseUrl, async (db) => {
      const { rows } = await db.query('SELECT hash_offset::float8 AS o FROM upload_sessions WHERE id = $1', [id]);
      return rows[0]?.o as number | null;
    });

    const put = new URL(location.pathname + location.search, putOn === 2 ? gw2.url : stack.url);
    put.searchParams.set('digest', digest);
    t = process.hrtime.bigint();
    const done = await request(put, { method: 'PUT', headers: { 'content-length': '0' } });
    const body = await done.body.text();
    if (done.statusCode !== 201) throw new Error(`PUT: ${done.statusCode} ${body}`);
    const putS = Number(process.hrtime.bigint() - t) / 1e9;
    const cpu2 = cpuSeconds(uploaders);
    await Promise.all([gw2.stop(), bu2.stop()]);
    return (
      `| ${label} | ${(size / MiB / patchS).toFixed(0)} MiB/s | ${(cpu1 - cpu0).toFixed(1)} s | ` +
      `${offset === null ? 'none' : `${(offset / MiB).toFixed(0)} MiB`} | ${putS.toFixed(2)} s | ${(cpu2 - cpu1).toFixed(1)} s |`
    );
  } finally {
    await stack.stop();
    await purgeS3Root(root);
  }
}

async function main(): Promise<void> {
  const blob = new RepeatedBlob(size);
  const digest = await blob.digest();
  const rows = [
    await run('PUT on the same replica (the commit alone)', true, 1, blob, digest),
    await run('PUT on the other replica, hash checkpoints (default)', true, 2, blob, digest),
    await run('PUT on the other replica, hashcheckpoints: false (re-hash)', false, 2, blob, digest),
  ];
  console.log(`${size / MiB} MiB, one PATCH through replica 1, then PUT ?digest= (PostgreSQL + MinIO, redirects off)\n`);
  console.log('| mode | PATCH throughput | blob-upload CPU during PATCH | checkpoint at PUT | PUT | blob-upload CPU during PUT |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
