/*
 * What it costs when a chunk of an upload lands on a blob-upload process that does not hold the
 * session's hash state (another replica, or after a restart): the process re-reads the stored
 * parts and re-hashes them (node:crypto sha256) before it appends. Measured at one size (1 GiB by
 * default) on the filesystem driver and on S3 (the test MinIO, when `scripts/services env` is
 * loaded), with the server-side commit of the same upload for comparison. Not a test: numbers.
 *
 *   SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register bench/rehash-cost.ts [MiB]
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilesystemBlobStorage, S3BlobStorage, type BlobStorage, type UploadPart } from '@lading/storage';

const MiB = 1024 * 1024;
const total = Number(process.argv[2] ?? 1024) * MiB;
const piece = randomBytes(4 * MiB);

async function* bytes(n: number): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < n; sent += piece.length) yield piece.subarray(0, Math.min(piece.length, n - sent));
}

async function seconds<T>(work: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const result = await work();
  return [result, Number(process.hrtime.bigint() - t) / 1e9];
}

async function measure(label: string, storage: BlobStorage): Promise<void> {
  const id = randomUUID();
  await storage.createUpload(id);
  const hash = createHash('sha256');
  // Written as 64 MiB PATCHes would be: one part each.
  let parts: UploadPart[] = [];
  const [, writeS] = await seconds(async () => {
    for (let at = 0; at < total; at += 64 * MiB) {
      const r = await storage.writePart(id, parts, bytes(Math.min(64 * MiB, total - at)), { onData: (c) => hash.update(c) });
      await storage.deleteParts(id, r.superseded);
      parts = r.parts;
    }
  });
  const digest = `sha256:${hash.digest('hex')}`;
  const [rehashed, rehashS] = await seconds(async () => {
    const h = createHash('sha256');
    for await (const c of await storage.readUpload(id, parts)) h.update(c as Buffer);
    return `sha256:${h.digest('hex')}`;
  });
  if (rehashed !== digest) throw new Error('re-hash disagrees');
  const [, commitS] = await seconds(() => storage.commitUpload(id, parts, digest));
  await storage.deleteBlob(digest);
  const gib = total / 1024 / MiB;
  console.log(
    `${label}: ${gib} GiB in ${parts.length} parts; write+hash ${writeS.toFixed(1)} s; ` +
      `re-read+re-hash (a chunk on another process) ${rehashS.toFixed(1)} s = ${(gib / rehashS).toFixed(2)} GiB/s; commit ${commitS.toFixed(1)} s`,
  );
}

async function main(): Promise<void> {
  const [, cpuS] = await seconds(async () => {
    const h = createHash('sha256');
    for await (const c of bytes(total)) h.update(c);
  });
  console.log(`node:crypto sha256 of ${total / MiB} MiB in memory: ${cpuS.toFixed(2)} s`);
  const root = mkdtempSync(join(tmpdir(), 'lading-rehash-'));
  try {
    await measure('filesystem', new FilesystemBlobStorage({ rootDirectory: root }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const env = process.env;
  if (env.LADING_TEST_S3_ENDPOINT) {
    await measure(
      's3 (MinIO)',
      new S3BlobStorage({
        accessKey: env.LADING_TEST_S3_ACCESS_KEY,
        secretKey: env.LADING_TEST_S3_SECRET_KEY,
        region: env.LADING_TEST_S3_REGION ?? 'us-east-1',
        regionEndpoint: env.LADING_TEST_S3_ENDPOINT,
        bucket: env.LADING_TEST_S3_BUCKET!,
        rootDirectory: `bench-rehash/${randomUUID()}`,
      }),
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
