import { randomUUID } from 'node:crypto';
import { S3BlobStorage } from '@lading/storage';
import { describeBlobStorageDriver } from '@lading/testing';
import { testS3Options } from '../support/s3';

/**
 * The shared driver suite against the real MinIO that `scripts/services` runs: every test gets
 * its own `rootdirectory` in the test bucket, and the suite's teardown rule fails it if any
 * object or unfinished multipart upload is left under that root.
 */
describeBlobStorageDriver('s3 (MinIO)', async () => {
  const storage = new S3BlobStorage(testS3Options());
  return { storage, leftovers: () => storage.keys(), cleanup: async () => undefined };
});

describe('S3BlobStorage on MinIO', () => {
  it('serves a blob from a presigned URL, whole and by range, without credentials', async () => {
    const storage = new S3BlobStorage(testS3Options());
    const id = randomUUID();
    await storage.createUpload(id);
    const content = Buffer.from('presigned bytes');
    const { parts } = await storage.writePart(id, [], (async function* () { yield content; })());
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(content).digest('hex')}`;
    await storage.commitUpload(id, parts, digest);
    try {
      const url = await storage.blobUrl(digest, 60);
      const whole = await fetch(url!);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(content)).toBe(true);
      const ranged = await fetch(url!, { headers: { range: 'bytes=3-8' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).toString()).toBe('signed');
    } finally {
      await storage.deleteBlob(digest);
    }
    expect(await storage.keys()).toEqual([]);
  });

  it('deleteUpload removes the unfinished multipart upload of a part write that died half way', async () => {
    // MinIO lists unfinished multipart uploads by exact key only: the record the write put under
    // its upload is how deleteUpload finds this one (and `keys()` lists the whole bucket's).
    const MiB = 1024 * 1024;
    const storage = new S3BlobStorage({ ...testS3Options(), chunkSize: 5 * MiB });
    const id = randomUUID();
    await storage.createUpload(id);
    let die!: (e: Error) => void;
    const dead = new Promise<never>((_, reject) => (die = reject));
    dead.catch(() => undefined); // the writer may fail first (its part upload aborted) and never await it
    const source = (async function* () {
      yield Buffer.alloc(6 * MiB, 1);
      await dead;
    })();
    const write = storage.writePart(id, [], source).then(
      () => 'stored',
      (e: Error) => e.message,
    );
    // Started and recorded: the writer records its multipart upload after starting it (one small
    // PUT later), and a check between the two would find nothing to follow yet.
    const started = (keys: string[]) => keys.some((k) => k.startsWith('multipart:')) && keys.some((k) => k.startsWith(`uploads/${id}/multipart/`));
    for (let i = 0; !started(await storage.keys()); i++) {
      if (i > 100) throw new Error('the write never started its multipart upload');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The writer is stuck as a dead one would be: it will not clean up before this is checked.
    await storage.deleteUpload(id);
    expect(await storage.keys()).toEqual([]);
    die(new Error('the writer died'));
    // It fails either way: from its source, or from its part upload that the abort cut short.
    expect(await write).toMatch(/the writer died|multipart upload does not exist/);
    expect(await storage.keys()).toEqual([]);
  });

  it('refuses a chunksize below the 5 MiB S3 part minimum', () => {
    expect(() => new S3BlobStorage({ ...testS3Options(), chunkSize: 1024 })).toThrow(RangeError);
  });
});
