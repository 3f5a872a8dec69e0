import { randomUUID } from 'node:crypto';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { UploadPurgeService } from './upload-purge.service';

const HOUR = 3_600_000;

async function* bytes(n: number): AsyncIterable<Buffer> {
  yield Buffer.alloc(n, 1);
}

/**
 * Session ages are the database's: rows are aged by running the purge with an age shorter than
 * the time since they were written (the database clock only moves forward), never by writing
 * timestamps from this process's clock.
 */
describe('UploadPurgeService', () => {
  let db: MetadataDb;
  let storage: MemoryBlobStorage;
  let now: Date;

  beforeAll(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
  }, 60_000);
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    for (const id of await db.read.uploads.findStale(0, 10_000)) await db.read.uploads.deleteSession(id);
    now = new Date();
    storage = new MemoryBlobStorage({ now: () => now });
  });

  async function session(): Promise<string> {
    const id = randomUUID();
    await storage.createUpload(id);
    await storage.writePart(id, [], bytes(10));
    await db.read.uploads.createSession(id, 'purge/app');
    return id;
  }

  function service(env: Record<string, string> = {}): UploadPurgeService {
    return new UploadPurgeService(db, storage, loadConfig({ LADING_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: '24h', ...env }));
  }

  it('purges sessions older than the age with their bytes, and keeps younger ones', async () => {
    const stale = await session();
    await new Promise((r) => setTimeout(r, 5));
    expect((await service().purge(now, 24 * HOUR)).sessions).toBe(0);
    const report = await service().purge(now, 1);
    expect(report.sessions).toBe(1);
    expect(await storage.uploadExists(stale)).toBe(false);
    expect(storage.keys()).toEqual([]);
    expect(await db.read.uploads.exists(stale)).toBe(false);
  });

  it('never purges a session whose writer holds the lease, however old its last change', async () => {
    const writing = await session();
    const owner = randomUUID();
    expect(await db.read.uploads.acquireLease(writing, 0, owner, 60_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    expect((await service().purge(now, 1)).sessions).toBe(0);
    expect(await db.read.uploads.exists(writing)).toBe(true);
    await db.read.uploads.releaseLease(writing, owner);
    await new Promise((r) => setTimeout(r, 5));
    expect((await service().purge(now, 1)).sessions).toBe(1);
  });

  it('purges upload bytes that have no session once they are old, not before', async () => {
    const orphan = randomUUID();
    await storage.createUpload(orphan);
    expect((await service().purge(new Date(now.getTime() + HOUR), 24 * HOUR)).orphans).toBe(0);
    expect(await storage.uploadExists(orphan)).toBe(true);
    expect((await service().purge(new Date(now.getTime() + 25 * HOUR), 24 * HOUR)).orphans).toBe(1);
    expect(await storage.uploadExists(orphan)).toBe(false);
  });

  it('changes nothing in dry-run mode', async () => {
    const stale = await session();
    await new Promise((r) => setTimeout(r, 5));
    const report = await service({ LADING_STORAGE_MAINTENANCE_UPLOADPURGING_DRYRUN: 'true' }).purge(now, 1);
    expect(report.sessions).toBe(1);
    expect(await storage.uploadExists(stale)).toBe(true);
  });
});
