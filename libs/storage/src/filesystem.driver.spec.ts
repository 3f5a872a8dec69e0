import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UploadPart } from './blob-storage.port';
import { FilesystemBlobStorage } from './filesystem.driver';

async function temporaryRoot(): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'lading-storage-'));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

describe('FilesystemBlobStorage', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let storage: FilesystemBlobStorage;

  beforeEach(async () => {
    ({ root, cleanup } = await temporaryRoot());
    storage = new FilesystemBlobStorage({ rootDirectory: root });
  });

  afterEach(() => cleanup());

  const content = Buffer.from('layout');
  const hex = createHash('sha256').update(content).digest('hex');
  const digest = `sha256:${hex}`;

  async function* body(bytes: Buffer): AsyncGenerator<Buffer> {
    yield bytes;
  }

  async function uploadOf(...contents: Buffer[]): Promise<{ id: string; parts: UploadPart[] }> {
    const id = randomUUID();
    await storage.createUpload(id);
    let parts: UploadPart[] = [];
    for (const bytes of contents) parts = (await storage.writePart(id, parts, body(bytes))).parts;
    return { id, parts };
  }

  async function commit(upload: Promise<{ id: string; parts: UploadPart[] }>, on = storage): Promise<void> {
    const { id, parts } = await upload;
    await on.commitUpload(id, parts, digest);
  }

  async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of items) out.push(item);
    return out;
  }

  it('flushes a large part while it is written, and fails the write when an early flush failed (the closing one would not know)', async () => {
    const { open } = await import('node:fs/promises');
    const probe = await open(join(root, 'probe'), 'w');
    const FileHandle = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const real = FileHandle.datasync;
    let calls = 0;
    let failFirst = false;
    const spy = jest.spyOn(FileHandle, 'datasync').mockImplementation(function (this: unknown) {
      calls++;
      if (failFirst && calls === 1) return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      return real.call(this);
    });
    try {
      const chunk = Buffer.alloc(4 * 1024 * 1024, 7);
      async function* big(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 20; i++) yield chunk; // 80 MiB
      }
      const id = randomUUID();
      await storage.createUpload(id);
      await storage.writePart(id, [], big());
      // One started at 32 MiB (none in flight then), one closing; one at 64 MiB only if the first was done.
      expect(calls).toBeGreaterThanOrEqual(2);

      calls = 0;
      failFirst = true;
      const other = randomUUID();
      await storage.createUpload(other);
      await expect(storage.writePart(other, [], big())).rejects.toMatchObject({ code: 'EIO' });
      expect(await readdir(join(root, 'uploads', other))).not.toContainEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    } finally {
      spy.mockRestore();
    }
  });

  it('is named like the reference registry’s filesystem driver', () => {
    expect(storage.driverName).toBe('filesystem');
  });

  it('keeps uploads under uploads/<id>/ (marker, immutable parts) and blobs under blobs/<alg>/<first two hex>/<hex>/data', async () => {
    const { id, parts } = await uploadOf(content.subarray(0, 3), content.subarray(3));
    expect((await readdir(join(root, 'uploads', id))).sort()).toEqual(['parts', 'startedat']);
    expect((await readdir(join(root, 'uploads', id, 'parts'))).sort()).toEqual(parts.map((p) => p.name).sort());
    expect(await readFile(join(root, 'uploads', id, 'parts', parts[0].name))).toEqual(content.subarray(0, 3));
    expect(Number.isNaN(Date.parse(await readFile(join(root, 'uploads', id, 'startedat'), 'utf8')))).toBe(false);

    await storage.commitUpload(id, parts, digest);

    expect(await readFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'))).toEqual(content);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it('removes the blob directory on delete', async () => {
    await commit(uploadOf(content));
    await storage.deleteBlob(digest);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([]);
  });

  it('removes the blob directories on a batch delete', async () => {
    await commit(uploadOf(content));
    await storage.deleteBlobs([digest]);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([]);
  });

  it('creates nothing outside the root for a traversal attempt', async () => {
    await expect(storage.createUpload('../escaped')).rejects.toThrow('invalid upload id');
    await expect(stat(join(root, '..', 'escaped'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lists an upload whose creation was cut short (no marker) so it can be purged', async () => {
    const id = randomUUID();
    await mkdir(join(root, 'uploads', id), { recursive: true });
    expect(await storage.uploadExists(id)).toBe(false);
    expect(await collect(storage.listUploads())).toEqual([{ id, startedAt: null }]);
    await storage.deleteUpload(id);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('ignores stray entries when listing', async () => {
    await commit(uploadOf(content));
    await mkdir(join(root, 'uploads', 'not-an-upload'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', 'zz', 'nothex'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', '00', '00'.padEnd(64, '1')), { recursive: true });
    await mkdir(join(root, 'blobs', 'md5', 'ab'), { recursive: true });
    await writeFile(join(root, 'blobs', 'sha256', 'file'), '');
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('refuses to commit a part whose file does not hold its recorded size (damaged or foreign)', async () => {
    const { id, parts } = await uploadOf(content);
    await writeFile(join(root, 'uploads', id, 'parts', parts[0].name), 'lay');
    await expect(storage.commitUpload(id, parts, digest)).rejects.toMatchObject({ ociCode: 'BLOB_UPLOAD_UNKNOWN' });
    expect(await storage.statBlob(digest)).toBeNull();
  });

  it('replaces a damaged blob (wrong size) when the same digest is committed again', async () => {
    await commit(uploadOf(content));
    await writeFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), 'lay');
    await commit(uploadOf(content));
    expect(await storage.statBlob(digest)).toEqual({ size: content.length });
  });

  it('leaves one blob when instances sharing a root (separate processes) commit the same digest at once', async () => {
    const others = Array.from({ length: 8 }, () => new FilesystemBlobStorage({ rootDirectory: root }));
    const uploads = await Promise.all(others.map(() => uploadOf(content)));
    await Promise.all(others.map((other, i) => other.commitUpload(uploads[i].id, uploads[i].parts, digest)));
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex))).toEqual(['data']);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it.each(['deleteBlob', 'deleteBlobs'] as const)('survives a commit racing a %s of the same digest', async (remove) => {
    await commit(uploadOf(content));
    const { id, parts } = await uploadOf(content);
    await Promise.all([remove === 'deleteBlob' ? storage.deleteBlob(digest) : storage.deleteBlobs([digest]), storage.commitUpload(id, parts, digest)]);
    expect(await storage.uploadExists(id)).toBe(false);
  });
});
