/* Content for garbage-collection tests: blobs straight into storage, and a registry's worth of pushes. */
import { randomUUID } from 'node:crypto';
import type { BlobStorage } from '@lading/storage';
import { randomBlob, randomImage, sha256, type TestBlob, type TestImage } from './images';
import { RegistryTestClient } from './registry-client';

/**
 * Commits `content` straight into `storage` as blob `digest` (its sha256 unless given), with no
 * database row: what a push leaves between its storage commit and its row (an orphan), or, under
 * another content's digest, a damaged blob. Returns the digest.
 */
export async function commitBytes(storage: BlobStorage, content: Buffer, digest = sha256(content)): Promise<string> {
  const id = randomUUID();
  await storage.createUpload(id);
  const { parts } = await storage.writePart(
    id,
    [],
    (async function* () {
      yield content;
    })(),
  );
  await storage.commitUpload(id, parts, digest);
  return digest;
}

/**
 * Pushes, through the registry at `url`, an image of two layers tagged `v1` and a lone blob of
 * `blobSize` bytes to `repository`. @throws Error when a push is not answered 201.
 */
export async function pushImageAndBlob(
  url: string,
  repository: string,
  blobSize = 2048,
): Promise<{ image: TestImage; blob: TestBlob }> {
  const client = new RegistryTestClient(url);
  const image = randomImage({ layers: 2 });
  const blob = randomBlob(blobSize);
  try {
    for (const push of [() => client.pushImage(repository, image, 'v1'), () => client.pushBlob(repository, blob)]) {
      const res = await push();
      if (res.status !== 201) throw new Error(`push to ${repository}: ${res.status} ${res.body.toString()}`);
    }
  } finally {
    await client.close();
  }
  return { image, blob };
}
