import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReconcileStore, type MetadataDb } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { FilesystemBlobStorage, type BlobInfo, type BlobStorage } from '@lading/storage';
import { commitBytes, pushImageAndBlob, useMemoryMetadataDb } from '@lading/testing';
import { startTestRegistry, type TestRegistry } from '../embedded.harness';
import { EXIT_MISSING_BYTES, ReconcileRefusedError, reconcileCommand } from './reconcile.command';
import { ReconcileService, type ReconcileRows, type ReconcileStorage } from './reconcile.service';

jest.setTimeout(90_000);

/** The storage's clock once it has moved past every blob stored so far (storage times only). */
async function storageTimeAfterEveryBlob(storage: BlobStorage): Promise<Date> {
  let latest = 0;
  for await (const b of storage.listBlobInfo()) latest = Math.max(latest, b.modified.getTime());
  let t = await storage.currentTime();
  while (t.getTime() <= latest) t = await storage.currentTime();
  return t;
}

async function listed(storage: BlobStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const d of storage.listBlobs()) out.push(d);
  return out;
}

describe('ReconcileService on PGlite and the filesystem', () => {
  const database = useMemoryMetadataDb();
  let db: MetadataDb;
  let root: string;
  let storage: FilesystemBlobStorage;
  let service: ReconcileService;
  const push = async (content: Buffer) => {
    const digest = await commitBytes(storage, content);
    await db.transaction((tx) => tx.blobs.linkBlob('reconcile/app', { digest, size: content.length }));
    return digest;
  };

  beforeEach(async () => {
    db = database.db;
    await db.dataSource.query('DELETE FROM repository_blobs; DELETE FROM blobs;');
    root = mkdtempSync(join(tmpdir(), 'lading-reconcile-'));
    storage = new FilesystemBlobStorage({ rootDirectory: root });
    service = new ReconcileService(new ReconcileStore(db), storage);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Two pushed blobs, one orphan, one row without bytes, one row whose object has another size. */
  async function plant() {
    const kept = await push(Buffer.from('a pushed blob'));
    const alsoKept = await push(Buffer.from('another pushed blob'));
    const orphan = await commitBytes(storage, Buffer.from('bytes no row knows'));
    const gone = await push(Buffer.from('bytes deleted behind the database'));
    await storage.deleteBlob(gone);
    const resized = await push(Buffer.from('bytes of the right size'));
    await commitBytes(storage, Buffer.from('other bytes, other size, same key'), resized);
    return { kept, alsoKept, orphan, gone, resized };
  }

  it('reports objects no row knows and rows whose bytes are missing or of another size, changing nothing', async () => {
    const p = await plant();
    const before = await listed(storage);
    const report = await service.reconcile({ delete: false, dryRun: false, reviewAfter: 0 });
    expect(report.mode).toBe('report');
    expect(report.orphans).toMatchObject({
      count: 1,
      bytes: 18,
      items: [{ digest: p.orphan, size: 18, status: 'old' }],
    });
    expect(report.missing.count).toBe(2);
    expect(report.missing.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ digest: p.gone, size: 33, storedSize: null }),
        expect.objectContaining({ digest: p.resized, size: 23, storedSize: 33 }),
      ]),
    );
    expect(report.storage).toEqual({ count: 4, bytes: 13 + 19 + 18 + 33 });
    expect(report.database).toEqual({ count: 4, bytes: 13 + 19 + 33 + 23 });
    expect(report.deleted).toEqual({ count: 0, bytes: 0 });
    expect(await listed(storage)).toEqual(before);
  });

  it('with delete, removes only the orphans stored at or before the cutoff, by the storage clock', async () => {
    const p = await plant();
    const cutoff = new Date((await storageTimeAfterEveryBlob(storage)).getTime() - 1);
    const young = await commitBytes(storage, Buffer.from('an orphan stored after the cutoff'));
    const report = await service.reconcile({ delete: true, dryRun: false, reviewAfter: 0, cutoff });
    expect(report.mode).toBe('delete');
    const status = Object.fromEntries(report.orphans.items.map((o) => [o.digest, o.status]));
    expect(status).toEqual({ [p.orphan]: 'deleted', [young]: 'young' });
    expect(report.deleted).toEqual({ count: 1, bytes: 18 });
    expect((await listed(storage)).sort()).toEqual([p.kept, p.alsoKept, p.resized, young].sort());
    // Missing bytes are reported, never fixed: the rows are all still there.
    expect(await new ReconcileStore(db).totals()).toEqual({ count: 4, bytes: 13 + 19 + 33 + 23 });
  });

  it('deletes nothing with a cutoff before every orphan, or with dry-run', async () => {
    const p = await plant();
    const before = await listed(storage);
    const past = await service.reconcile({ delete: true, dryRun: false, reviewAfter: 0, cutoff: new Date(0) });
    expect(past.orphans.items).toEqual([expect.objectContaining({ digest: p.orphan, status: 'young' })]);
    const dry = await service.reconcile({
      delete: true,
      dryRun: true,
      reviewAfter: 0,
      cutoff: new Date(Date.now() + 3_600_000),
    });
    expect(dry.mode).toBe('dry-run');
    expect(dry.orphans.items).toEqual([expect.objectContaining({ digest: p.orphan, status: 'old' })]);
    expect(dry.deleted.count).toBe(0);
    expect(await listed(storage)).toEqual(before);
  });

  it('keeps an orphan whose row a push writes after the walk, before the delete', async () => {
    const orphan = await commitBytes(storage, Buffer.from('pushed while reconcile ran'));
    const store = new ReconcileStore(db);
    const rows: ReconcileRows = {
      totals: () => store.totals(),
      rows: () => store.rows(),
      sizesOf: (d) => store.sizesOf(d),
      async deleteUnknownBlobs(blobs, remove) {
        // The push's transaction commits right before the delete takes its claim.
        for (const { digest, size } of blobs)
          await db.transaction((tx) => tx.blobs.linkBlob('reconcile/app', { digest, size }));
        return store.deleteUnknownBlobs(blobs, remove);
      },
    };
    const report = await new ReconcileService(rows, storage).reconcile({
      delete: true,
      dryRun: false,
      reviewAfter: 0,
      cutoff: new Date(Date.now() + 3_600_000),
    });
    expect(report.orphans.items).toEqual([expect.objectContaining({ digest: orphan, status: 'known' })]);
    expect(report.deleted.count).toBe(0);
    expect(await listed(storage)).toEqual([orphan]);
  });

  it('drops a difference that the walk saw but that a push or delete settled before the re-check', async () => {
    const pushedDuringWalk = await commitBytes(storage, Buffer.from('row written after the walk passed it'));
    const settling: ReconcileStorage = {
      currentTime: () => storage.currentTime(),
      statBlob: (d) => storage.statBlob(d),
      deleteBlobs: (d) => storage.deleteBlobs(d),
      async *listBlobInfo() {
        for await (const b of storage.listBlobInfo()) {
          yield b;
          await db.transaction((tx) => tx.blobs.linkBlob('reconcile/app', { digest: b.digest, size: b.size }));
        }
      },
    };
    const report = await new ReconcileService(new ReconcileStore(db), settling).reconcile({
      delete: true,
      dryRun: false,
      reviewAfter: 0,
    });
    expect(report.orphans.count).toBe(0);
    expect(report.missing.count).toBe(0);
    expect(await listed(storage)).toEqual([pushedDuringWalk]);
  });

  it('refuses a storage listing out of digest order, deleting nothing', async () => {
    const [a, b] = [
      await commitBytes(storage, Buffer.from('one')),
      await commitBytes(storage, Buffer.from('two')),
    ].sort();
    const reversed: ReconcileStorage = {
      currentTime: () => storage.currentTime(),
      statBlob: (d) => storage.statBlob(d),
      deleteBlobs: (d) => storage.deleteBlobs(d),
      async *listBlobInfo() {
        const all: BlobInfo[] = [];
        for await (const blob of storage.listBlobInfo()) all.push(blob);
        yield* all.reverse();
      },
    };
    await expect(
      new ReconcileService(new ReconcileStore(db), reversed).reconcile({ delete: true, dryRun: false, reviewAfter: 0 }),
    ).rejects.toThrow(`the storage listing is not in digest order (${b} came before ${a})`);
    expect((await listed(storage)).sort()).toEqual([a, b]);
  });
});

describe('lading gc reconcile against the embedded registry’s data folder', () => {
  let registry: TestRegistry | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs the command as main.ts does, capturing its output. */
  async function run(args: string[], env: Record<string, string>) {
    let out = '';
    let err = '';
    const config = loadConfig({ LADING_LOG_LEVEL: 'error', ...env });
    const code = await reconcileCommand(args, config, {
      out: { write: (t: string) => (out += t) },
      err: { write: (t: string) => (err += t) },
    });
    return { code, out, err };
  }

  it('refuses while the registry holds the database, then reports, keeps young orphans, and deletes old ones', async () => {
    registry = await startTestRegistry();
    dataDir = registry.dataDir;
    const env = { LADING_DATA_DIR: dataDir };
    const { blob } = await pushImageAndBlob(registry.url, 'reconcile/app', 4096);

    const refused = await run([], env).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ReconcileRefusedError);
    expect((refused as Error).message).toMatch(
      /in use by process \d+[\s\S]*Stop the registry[\s\S]*split mode on PostgreSQL/,
    );

    await registry.close(true);
    registry = undefined;
    const storage = new FilesystemBlobStorage({ rootDirectory: join(dataDir, 'storage') });
    const orphan = await commitBytes(storage, Buffer.from('left by a crash before the row'));
    await storage.deleteBlob(blob.digest);
    const stored = (await listed(storage)).sort();

    // The default review delay (24 h): a new orphan may be a push in flight.
    const first = await run(['--json'], env);
    expect(first.code).toBe(EXIT_MISSING_BYTES);
    const report = JSON.parse(first.out);
    expect(report.orphans.items).toEqual([expect.objectContaining({ digest: orphan, status: 'young' })]);
    expect(report.missing.items).toEqual([
      expect.objectContaining({ digest: blob.digest, size: 4096, storedSize: null }),
    ]);
    expect(first.err).toMatch(/reconcile: comparing storage with the database: \d+\/\d+ items.*done in/);
    expect(first.err).toContain('1 orphans');

    const dry = await run(['--dry-run', '--delete'], { ...env, LADING_GC_REVIEWAFTER: '0s' });
    expect(dry.out).toContain(`${orphan}  30 B`);
    expect(dry.out).toContain(
      'dry run: nothing changed; --delete would remove the orphans older than the review delay',
    );
    expect((await listed(storage)).sort()).toEqual(stored);

    const young = await run(['--delete', '--json'], env);
    expect(JSON.parse(young.out).orphans.items).toEqual([expect.objectContaining({ digest: orphan, status: 'young' })]);
    expect((await listed(storage)).sort()).toEqual(stored);

    const old = await run(['--delete', '--json'], { ...env, LADING_GC_REVIEWAFTER: '0s' });
    expect(JSON.parse(old.out).deleted).toEqual({ count: 1, bytes: 30 });
    expect((await listed(storage)).sort()).toEqual(stored.filter((d) => d !== orphan));

    const after = await run([], env);
    expect(after.code).toBe(EXIT_MISSING_BYTES);
    expect(after.out).toContain('objects no row knows (orphans): 0');
    expect(after.out).toContain(`${blob.digest}  4.0 KiB`);
  });

  it('says so when there is no embedded database in the data folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-reconcile-empty-'));
    try {
      await expect(run([], { LADING_DATA_DIR: dir })).rejects.toThrow(/no embedded database at .*db/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
