import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeBlobStorageDriver } from './blob-storage.suite';
import { FilesystemBlobStorage } from './filesystem.driver';

async function temporaryRoot(): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'lading-storage-'));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

describeBlobStorageDriver('filesystem', async () => {
  const { root, cleanup } = await temporaryRoot();
  return { storage: new FilesystemBlobStorage({ rootDirectory: root }), cleanup };
});

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

  async function uploadOf(bytes: Buffer): Promise<string> {
    const id = randomUUID();
    await storage.createUpload(id);
    await storage.appendUpload(id, 0, body(bytes));
    return id;
  }

  async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of items) out.push(item);
    return out;
  }

  it('is named like the reference registry’s filesystem driver', () => {
    expect(storage.driverName).toBe('filesystem');
  });

  it('keeps uploads under uploads/<id>/ and blobs under blobs/<alg>/<first two hex>/<hex>/data', async () => {
    const id = await uploadOf(content);
    expect((await readdir(join(root, 'uploads', id))).sort()).toEqual(['data', 'startedat']);
    expect(await readFile(join(root, 'uploads', id, 'data'))).toEqual(content);
    expect(Number.isNaN(Date.parse(await readFile(join(root, 'uploads', id, 'startedat'), 'utf8')))).toBe(false);

    await storage.commitUpload(id, digest);

    expect(await readFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'))).toEqual(content);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it('removes the blob directory on delete', async () => {
    await storage.commitUpload(await uploadOf(content), digest);
    await storage.deleteBlob(digest);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([]);
  });

  it('creates nothing outside the root for a traversal attempt', async () => {
    await expect(storage.createUpload('../escaped')).rejects.toThrow('invalid upload id');
    await expect(stat(join(root, '..', 'escaped'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lists an upload whose creation was cut short (no data file) so it can be purged', async () => {
    const id = randomUUID();
    await mkdir(join(root, 'uploads', id), { recursive: true });
    expect(await storage.uploadSize(id)).toBeNull();
    expect(await collect(storage.listUploads())).toEqual([expect.objectContaining({ id, size: 0 })]);
    await storage.deleteUpload(id);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('ignores stray entries when listing', async () => {
    await storage.commitUpload(await uploadOf(content), digest);
    await mkdir(join(root, 'uploads', 'not-an-upload'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', 'zz', 'nothex'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', '00', '00'.padEnd(64, '1')), { recursive: true });
    await mkdir(join(root, 'blobs', 'md5', 'ab'), { recursive: true });
    await writeFile(join(root, 'blobs', 'sha256', 'file'), '');
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('counts bytes that a crashed append left behind, so clients resume after them', async () => {
    const id = await uploadOf(Buffer.from('abc'));
    await writeFile(join(root, 'uploads', id, 'data'), 'abcdef');
    expect(await storage.uploadSize(id)).toBe(6);
    expect(await storage.appendUpload(id, 6, body(Buffer.from('g')))).toBe(7);
  });

  it('replaces a damaged blob (wrong size) when the same digest is committed again', async () => {
    await storage.commitUpload(await uploadOf(content), digest);
    await writeFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), 'lay');
    await storage.commitUpload(await uploadOf(content), digest);
    expect(await storage.statBlob(digest)).toEqual({ size: content.length });
  });

  it('leaves one blob when instances sharing a root (separate processes) commit the same digest at once', async () => {
    const others = Array.from({ length: 8 }, () => new FilesystemBlobStorage({ rootDirectory: root }));
    const ids = await Promise.all(others.map(() => uploadOf(content)));
    await Promise.all(others.map((other, i) => other.commitUpload(ids[i], digest)));
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex))).toEqual(['data']);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it('survives a commit racing a delete of the same digest', async () => {
    await storage.commitUpload(await uploadOf(content), digest);
    const id = await uploadOf(content);
    await Promise.all([storage.deleteBlob(digest), storage.commitUpload(id, digest)]);
    expect(await storage.uploadSize(id)).toBeNull();
  });
});
