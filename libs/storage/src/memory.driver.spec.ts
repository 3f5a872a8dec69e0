import { randomUUID } from 'node:crypto';
import { describeBlobStorageDriver } from './blob-storage.suite';
import { MemoryBlobStorage } from './memory.driver';

describeBlobStorageDriver('memory', async () => ({ storage: new MemoryBlobStorage(), cleanup: async () => undefined }));

describe('MemoryBlobStorage', () => {
  it('is named like the reference registry’s in-memory driver', () => {
    expect(new MemoryBlobStorage().driverName).toBe('inmemory');
  });

  it('stamps uploads with the injected clock', async () => {
    let now = new Date('2024-01-01T00:00:00Z');
    const storage = new MemoryBlobStorage({ now: () => now });
    const id = randomUUID();
    await storage.createUpload(id);
    now = new Date('2024-01-02T00:00:00Z');
    await storage.appendUpload(
      id,
      0,
      (async function* () {
        yield Buffer.from('x');
      })(),
    );
    const uploads = [];
    for await (const upload of storage.listUploads()) uploads.push(upload);
    expect(uploads).toEqual([
      { id, size: 1, startedAt: new Date('2024-01-01T00:00:00Z') },
    ]);
  });

  it('keeps its own copy of appended bytes, so callers may reuse their buffers', async () => {
    const storage = new MemoryBlobStorage();
    const id = randomUUID();
    await storage.createUpload(id);
    const reused = Buffer.from('abc');
    await storage.appendUpload(
      id,
      0,
      (async function* () {
        yield reused;
      })(),
    );
    reused.fill(0);
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.readUpload(id)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abc');
  });
});
