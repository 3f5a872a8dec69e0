import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { GarbageCollector } from '@lading/app-gc-worker';
import { resetWorld, runConcurrently, type RaceViolation, type RaceWorld } from '../../apps/gc-worker/src/gc/race-harness';
import { MetadataDb, openMetadataDb, ReconcileStore, type GcUnsafeOptions } from '@lading/metadata-db';
import { ReconcileService } from '../../apps/lading/src/gc/reconcile.service';
import { loadConfig } from '@lading/nest-common';
import { eventually } from '@lading/testing';
import { FilesystemBlobStorage, S3BlobStorage, type BlobStorage } from '@lading/storage';
import { createTestDatabase } from '../support/registry-processes';
import { purgeS3Root, testS3Options } from '../support/s3';

jest.setTimeout(15 * 60_000);

/**
 * The race world on PostgreSQL: clients on one pool, two collectors each on a pool of its own (as
 * two gc-worker replicas), the hardest review delay (0). `unsafe` weakens the collectors' locking.
 */
async function twoWorkerWorld(url: string, storage: BlobStorage, unsafe?: GcUnsafeOptions): Promise<{ w: RaceWorld; dbs: MetadataDb[] }> {
  const open = async (gcUnsafe?: GcUnsafeOptions) => new MetadataDb(await openMetadataDb({ url }), { gcUnsafe });
  const dbs = [await open(), await open(unsafe), await open(unsafe)];
  const config = loadConfig({}, { gc: { reviewafter: 0, deleteuntagged: true, disabled: true } });
  await dbs[0]!.read.gc.setReviewAfter(0);
  const w = { db: dbs[0]!, storage, collectors: [new GarbageCollector(dbs[1]!, storage, config), new GarbageCollector(dbs[2]!, storage, config)] };
  await resetWorld(w);
  return { w, dbs };
}

/**
 * Online GC on PostgreSQL, with the real storage backends: the race harness with clients and two
 * collectors truly concurrent (each collector on its own connection pool, as two gc-worker
 * replicas), then the leak check — once the collectors are done, storage holds exactly the bytes
 * of what is still referenced.
 */
describe.each([
  ['MinIO', 's3'],
  ['the filesystem', 'filesystem'],
] as const)('online GC on PostgreSQL and %s', (_name, driver) => {
  let database: { url: string; drop(): Promise<void> };
  let dbs: MetadataDb[] = [];
  let storage: BlobStorage;
  let cleanup: () => Promise<void>;
  let w: RaceWorld;

  beforeAll(async () => {
    database = await createTestDatabase();
    if (driver === 's3') {
      const root = `gc-int/${randomUUID()}`;
      storage = new S3BlobStorage(testS3Options(root));
      cleanup = () => purgeS3Root(root);
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'lading-gc-int-'));
      storage = new FilesystemBlobStorage({ rootDirectory: dir });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
    ({ w, dbs } = await twoWorkerWorld(database.url, storage));
  });

  afterAll(async () => {
    for (const db of dbs) await db.close();
    await database?.drop();
    await cleanup?.();
  });

  async function collectAll(): Promise<void> {
    await eventually(
      async () => {
        for (const gc of w.collectors) await gc.runOnce();
        return (await w.db.read.gc.status()).queues.every((q) => q.depth === 0);
      },
      60_000,
      'empty GC queues',
    );
  }

  it('keeps every tagged image pullable while clients and two collectors race', async () => {
    for (const seed of [1, 2, 3]) {
      const violations = await runConcurrently(w, seed, { clients: 4, operations: 25 });
      if (violations.length > 0) throw new Error(`seed ${seed}: ${violations.map((v) => `${v.problem}\n  ${v.trace.join('\n  ')}`).join('\n')}`);
    }
    const deleted = w.collectors.map((gc) => gc.stats().deleted);
    // Both collectors did work (a race with one idle collector would prove less).
    expect(deleted.every((n) => n > 0)).toBe(true);
  });

  it('leaves no leaked bytes: once collected, storage holds exactly what is referenced', async () => {
    // Everything untagged and unreferenced is garbage with the delay at 0: collect until the
    // queues are empty (reviews a push held during the race were postponed by a second or two).
    await collectAll();
    const referenced = new Set(await w.db.read.gc.referencedBlobDigests());
    const stored = new Set<string>();
    for await (const d of storage.listBlobs()) stored.add(d);
    expect([...stored].filter((d) => !referenced.has(d))).toEqual([]); // leaked bytes
    expect([...referenced].filter((d) => !stored.has(d))).toEqual([]); // lost bytes
    // And the offline check agrees: no object without its row, no row without its bytes.
    const report = await new ReconcileService(new ReconcileStore(w.db), storage).reconcile({ delete: false, dryRun: true, reviewAfter: 0 });
    expect({ orphans: report.orphans.items, missing: report.missing.items }).toEqual({ orphans: [], missing: [] });

    // Delete every tag: then everything goes, and storage ends empty.
    await w.db.read.gc.untagAllForTests();
    await collectAll();
    const left: string[] = [];
    for await (const d of storage.listBlobs()) left.push(d);
    if (left.length > 0) {
      // What keeps each leftover: its rows, its links and their review rows, what references it.
      const q = (sql: string) => w.db.dataSource.query(sql, [left]);
      const dump = {
        left,
        blobs: await q('SELECT b.digest, b.size, b.created_at FROM blobs b WHERE b.digest = ANY($1)'),
        links: await q('SELECT rb.*, r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id WHERE rb.digest = ANY($1)'),
        linkReviews: await q('SELECT * FROM gc_link_review_queue WHERE digest = ANY($1)'),
        blobReviews: await q('SELECT * FROM gc_blob_review_queue WHERE digest = ANY($1)'),
        references: await q("SELECT mr.*, m.repository_id, m.digest AS manifest_digest FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id WHERE mr.digest = ANY($1)"),
        manifests: await w.db.dataSource.query('SELECT id, repository_id, digest, subject_digest, created_at FROM manifests'),
        manifestReviews: await w.db.dataSource.query('SELECT * FROM gc_manifest_review_queue'),
        pins: await w.db.dataSource.query('SELECT * FROM blob_commit_pins'),
        uploads: await w.db.dataSource.query('SELECT id, committing_digest FROM upload_sessions'),
        counters: w.collectors.map((c) => c.stats()),
      };
      console.error('left in storage:', JSON.stringify(dump, null, 1));
    }
    expect(left).toEqual([]);
    expect(await w.db.read.gc.referencedBlobDigests()).toEqual([]);
  });
});

describe('the race harness on PostgreSQL with two collectors', () => {
  // Each lock closes one race; without it the harness must report a broken image. On PGlite the
  // steps run one at a time, so a row lock never meets a concurrent holder: only the commit pin
  // (held across steps) shows there, and the target locks need this concurrent run.
  it.each([
    ['the target locks', { skipTargetLocks: true }],
    ['the commit pins', { ignoreCommitPins: true }],
  ] as const)('finds the broken image when the collectors skip %s', async (_name, unsafe) => {
    const database = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'lading-gc-unsafe-'));
    const { w, dbs } = await twoWorkerWorld(database.url, new FilesystemBlobStorage({ rootDirectory: dir }), unsafe);
    try {
      let violations: RaceViolation[] = [];
      for (let seed = 1; seed <= 10 && violations.length === 0; seed++) {
        await resetWorld(w);
        violations = await runConcurrently(w, seed, { clients: 4, operations: 25 });
      }
      expect(violations.length).toBeGreaterThan(0);
      expect(violations[0]!.problem).toMatch(/bytes of referenced blob .* are gone|not linked|child missing|a client operation failed/);
    } finally {
      for (const db of dbs) await db.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
