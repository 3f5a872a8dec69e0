import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ensureRepository, openMetadataDb, runSql } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { UploadPurgeService } from './upload-purge.service';

const HOUR = 3_600_000;

async function* bytes(n: number): AsyncIterable<Buffer> {
  yield Buffer.alloc(n, 1);
}

describe('UploadPurgeService', () => {
  let ds: DataSource;
  let storage: MemoryBlobStorage;
  let now: Date;

  beforeAll(async () => {
    ds = await openMetadataDb({ pgliteDir: 'memory://' });
  }, 60_000);
  afterAll(async () => {
    await ds.destroy();
  });
  beforeEach(async () => {
    await runSql(ds.manager, 'DELETE FROM upload_sessions');
    now = new Date();
    storage = new MemoryBlobStorage({ now: () => now });
  });

  async function session(updatedHoursAgo: number): Promise<string> {
    const id = randomUUID();
    const repo = await ensureRepository(ds.manager, 'purge/app');
    await storage.createUpload(id);
    await storage.appendUpload(id, 0, bytes(10));
    await runSql(ds.manager, 'INSERT INTO upload_sessions (id, repository_id, size, updated_at) VALUES ($1, $2, 10, $3)', [
      id,
      repo,
      new Date(now.getTime() - updatedHoursAgo * HOUR),
    ]);
    return id;
  }

  function service(env: Record<string, string> = {}): UploadPurgeService {
    return new UploadPurgeService(ds, storage, loadConfig({ LADING_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: '24h', ...env }));
  }

  it('purges sessions older than the age with their bytes, and keeps fresh ones', async () => {
    const stale = await session(48);
    const fresh = await session(1);
    const report = await service().purge(now, 24 * HOUR);
    expect(report.sessions).toBe(1);
    expect(await storage.uploadSize(stale)).toBeNull();
    expect(await storage.uploadSize(fresh)).toBe(10);
    const { rows } = await runSql<{ id: string }>(ds.manager, 'SELECT id FROM upload_sessions');
    expect(rows.map((r) => r.id)).toEqual([fresh]);
  });

  it('purges upload bytes that have no session once they are old, not before', async () => {
    const orphan = randomUUID();
    await storage.createUpload(orphan);
    expect((await service().purge(new Date(now.getTime() + HOUR), 24 * HOUR)).orphans).toBe(0);
    expect(await storage.uploadSize(orphan)).toBe(0);
    expect((await service().purge(new Date(now.getTime() + 25 * HOUR), 24 * HOUR)).orphans).toBe(1);
    expect(await storage.uploadSize(orphan)).toBeNull();
  });

  it('changes nothing in dry-run mode', async () => {
    const stale = await session(48);
    const report = await service({ LADING_STORAGE_MAINTENANCE_UPLOADPURGING_DRYRUN: 'true' }).purge(now, 24 * HOUR);
    expect(report.sessions).toBe(1);
    expect(await storage.uploadSize(stale)).toBe(10);
  });
});
