import { randomUUID } from 'node:crypto';
import { Client } from 'minio';
import { S3BlobStorage, type S3BlobStorageOptions } from '@lading/storage';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run scripts/services start and eval "$(scripts/services env)"`);
  return v;
}

/** The S3 driver options for the test MinIO (`scripts/services env`), under a fresh root in its bucket. */
export function testS3Options(rootDirectory = `storage-suite/${randomUUID()}`): S3BlobStorageOptions {
  return {
    accessKey: need('LADING_TEST_S3_ACCESS_KEY'),
    secretKey: need('LADING_TEST_S3_SECRET_KEY'),
    region: need('LADING_TEST_S3_REGION'),
    regionEndpoint: need('LADING_TEST_S3_ENDPOINT'),
    bucket: need('LADING_TEST_S3_BUCKET'),
    rootDirectory,
    forcePathStyle: true,
  };
}

/** The `LADING_STORAGE_S3_*` environment that points a registry process at the test MinIO under `rootDirectory`. */
export function s3RegistryEnv(rootDirectory: string, chunkSize = 5 * 1024 * 1024): Record<string, string> {
  const o = testS3Options(rootDirectory);
  return {
    LADING_STORAGE_S3_ACCESSKEY: o.accessKey!,
    LADING_STORAGE_S3_SECRETKEY: o.secretKey!,
    LADING_STORAGE_S3_REGION: o.region,
    LADING_STORAGE_S3_REGIONENDPOINT: o.regionEndpoint!,
    LADING_STORAGE_S3_BUCKET: o.bucket,
    LADING_STORAGE_S3_ROOTDIRECTORY: rootDirectory,
    LADING_STORAGE_S3_FORCEPATHSTYLE: 'true',
    LADING_STORAGE_S3_CHUNKSIZE: String(chunkSize),
  };
}

/** Removes every blob and upload under `rootDirectory` of the test bucket (after a run). */
export async function purgeS3Root(rootDirectory: string): Promise<void> {
  const storage = new S3BlobStorage(testS3Options(rootDirectory));
  for await (const digest of storage.listBlobs()) await storage.deleteBlob(digest);
  for await (const upload of storage.listUploads()) await storage.deleteUpload(upload.id);
}

/** A `minio` client for the test MinIO, to look at objects below a stack's root directory. */
export function testMinioClient(): Client {
  const endpoint = new URL(need('LADING_TEST_S3_ENDPOINT'));
  return new Client({
    endPoint: endpoint.hostname,
    port: Number(endpoint.port),
    useSSL: endpoint.protocol === 'https:',
    accessKey: need('LADING_TEST_S3_ACCESS_KEY'),
    secretKey: need('LADING_TEST_S3_SECRET_KEY'),
    region: need('LADING_TEST_S3_REGION'),
    pathStyle: true,
  });
}

/**
 * Removes every object under `prefix` of the test bucket, whatever wrote it (another registry's
 * layout too), and aborts the unfinished multipart uploads there; `prefix` must not be empty.
 */
export async function purgeS3Prefix(prefix: string): Promise<void> {
  if (!prefix.replace(/\/+/g, '')) throw new Error('refusing to purge the whole test bucket');
  const bucket = need('LADING_TEST_S3_BUCKET');
  const client = testMinioClient();
  const root = `${prefix.replace(/^\/+|\/+$/g, '')}/`;
  for await (const upload of client.listIncompleteUploads(bucket, root, true)) {
    await client.abortMultipartUpload(bucket, upload.key, upload.uploadId);
  }
  let batch: string[] = [];
  for await (const item of client.listObjectsV2(bucket, root, true)) {
    if (item.name) batch.push(item.name);
    if (batch.length === 1000) {
      await client.removeObjects(bucket, batch);
      batch = [];
    }
  }
  if (batch.length > 0) await client.removeObjects(bucket, batch);
}
