import { randomUUID } from 'node:crypto';
import type { S3BlobStorageOptions } from '@lading/storage';

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
