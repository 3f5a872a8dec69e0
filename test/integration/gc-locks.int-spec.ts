import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { sha256 } from '@lading/testing';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { GarbageCollector } from '@lading/app-gc-worker';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { createTestDatabase } from '../support/registry-processes';

jest.setTimeout(120_000);

const REPO = 'gc-locks/app';
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * The push side's GC locks (`GcStore.lockDueReviews`) on PostgreSQL, seen from other sessions: a
 * worker's `NOWAIT` probe of a row tells whether the push holds it.
 */
describe('GcStore.lockDueReviews on PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> };
  let db: MetadataDb;
  const clients: Client[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    db = new MetadataDb(await openMetadataDb({ url: database.url }));
  });
  afterAll(async () => {
    for (const c of clients) await c.end();
    await db?.close();
    await database?.drop();
  });

  async function session(): Promise<Client> {
    const c = new Client({ connectionString: database.url });
    await c.connect();
    clients.push(c);
    return c;
  }

  /** Whether `sql` (a `FOR UPDATE NOWAIT` probe) finds its rows locked by another transaction. */
  async function lockedElsewhere(probe: Client, sql: string, params: unknown[]): Promise<boolean> {
    await probe.query('BEGIN');
    try {
      await probe.query(sql, params);
      return false;
    } catch (e) {
      if ((e as { code?: string }).code === LOCK_NOT_AVAILABLE) return true;
      throw e;
    } finally {
      await probe.query('ROLLBACK');
    }
  }

  /** Runs `lockDueReviews` in a transaction that stays open until `release` is called. */
  function holdLocks(repositoryId: number, refs: Parameters<MetadataDb['read']['gc']['lockDueReviews']>[1]) {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const held = new Promise<void>((r) => (locked = r));
    const done = db.transaction(async (tx) => {
      await tx.gc.lockDueReviews(repositoryId, refs);
      locked();
      await gate;
    });
    return { held, release, done };
  }

  const digest = () => sha256(randomBytes(16));
  const linkProbe = 'SELECT 1 FROM gc_link_review_queue WHERE repository_id = $1 AND digest = $2 FOR UPDATE NOWAIT';
  const blobProbe = 'SELECT 1 FROM gc_blob_review_queue WHERE digest = $1 FOR UPDATE NOWAIT';
  const manifestProbe = 'SELECT 1 FROM gc_manifest_review_queue WHERE manifest_id = $1 FOR UPDATE NOWAIT';

  it("locks the due review rows of a manifest put's blobs, links, itself and its referrers, and none that are due later", async () => {
    await db.read.gc.setReviewAfter(0);
    const [config, layer, later] = [digest(), digest(), digest()];
    for (const d of [config, layer, later]) await db.transaction((tx) => tx.blobs.linkBlob(REPO, { digest: d, size: 1 }));
    const repositoryId = (await db.read.repositories.findId(REPO))!;
    // A second link of `config` elsewhere, removed: the blob itself is queued too.
    await db.transaction((tx) => tx.blobs.linkBlob(`${REPO}-other`, { digest: config, size: 1 }));
    await db.transaction((tx) => tx.blobs.unlinkBlob(`${REPO}-other`, config));
    const subject = digest();
    const referrer = { repository: REPO, digest: digest(), mediaType: 'application/vnd.oci.image.manifest.v1+json', payload: Buffer.from('{}'), configDigest: null, subjectDigest: subject, artifactType: null, blobDigests: [], childDigests: [] };
    expect(await db.transaction((tx) => tx.manifests.putManifest(referrer))).toBeUndefined();
    const probe = await session();
    const { rows } = await probe.query<{ id: string }>('SELECT id FROM manifests WHERE digest = $1', [referrer.digest]);
    const referrerId = rows[0]!.id;
    // `later`'s review is due in an hour: not "due soon".
    await probe.query("UPDATE gc_link_review_queue SET review_after = now() + interval '1 hour' WHERE digest = $1", [later]);

    const push = holdLocks(repositoryId, { blobDigests: [config, layer, later], manifestDigests: [digest()], subjectOf: subject });
    await push.held;
    try {
      expect(await lockedElsewhere(probe, linkProbe, [repositoryId, config])).toBe(true);
      expect(await lockedElsewhere(probe, linkProbe, [repositoryId, layer])).toBe(true);
      expect(await lockedElsewhere(probe, blobProbe, [config])).toBe(true);
      expect(await lockedElsewhere(probe, manifestProbe, [referrerId])).toBe(true);
      expect(await lockedElsewhere(probe, linkProbe, [repositoryId, later])).toBe(false);
    } finally {
      push.release();
      await push.done;
    }
  });

  it('locks a review row that a worker queued while the push waited for an earlier one', async () => {
    await db.read.gc.setReviewAfter(0);
    const blob = digest();
    await db.transaction((tx) => tx.blobs.linkBlob(REPO, { digest: blob, size: 1 }));
    const repositoryId = (await db.read.repositories.findId(REPO))!;
    // A worker's link batch: claims the link's review, removes the link (which queues the blob, due at once).
    const worker = await session();
    await worker.query('BEGIN');
    await worker.query('SELECT 1 FROM gc_link_review_queue WHERE repository_id = $1 AND digest = $2 FOR UPDATE', [repositoryId, blob]);
    await worker.query('DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2', [repositoryId, blob]);

    const push = holdLocks(repositoryId, { blobDigests: [blob] });
    const probe = await session();
    // The push waits for the worker's link review row (polled, not timed).
    for (;;) {
      const { rows } = await probe.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      if (Number(rows[0]!.n) > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.query('COMMIT');
    await push.held;
    try {
      // The blob's review row did not exist when the push started waiting; it is locked all the same.
      expect(await lockedElsewhere(probe, blobProbe, [blob])).toBe(true);
    } finally {
      push.release();
      await push.done;
    }
  });

  it("gives a push the way in a lock cycle with a worker's link batch: the batch stops waiting first, is postponed, and PostgreSQL finds no deadlock", async () => {
    await db.read.gc.setReviewAfter(0);
    const blob = digest();
    const repo = `${REPO}-cycle`;
    const manifest = { repository: repo, digest: digest(), mediaType: 'application/vnd.oci.image.manifest.v1+json', payload: Buffer.from('{}'), configDigest: null, subjectDigest: null, artifactType: null, blobDigests: [blob], childDigests: [] };
    // The blob linked and referenced by a manifest, and its own review row due (a link elsewhere removed).
    await db.transaction((tx) => tx.blobs.linkBlob(repo, { digest: blob, size: 1 }));
    await db.transaction((tx) => tx.blobs.linkBlob(`${repo}-other`, { digest: blob, size: 1 }));
    await db.transaction((tx) => tx.blobs.unlinkBlob(`${repo}-other`, blob));
    await db.transaction(async (tx) => void (await tx.manifests.putManifest(manifest)));
    const repositoryId = (await db.read.repositories.findId(repo))!;
    const probe = await session();
    // The link was reviewed while the manifest stood (judged live: its review row dropped).
    await probe.query('DELETE FROM gc_link_review_queue WHERE repository_id = $1', [repositoryId]);
    const deadlocks = async () => Number((await probe.query<{ n: string }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n);
    const before = await deadlocks();

    // A push of a second manifest over the blob, as ManifestStore.putManifest runs it, step by step:
    // first GC's due review rows (the blob's; the link has none yet)...
    const push = await session();
    await push.query('BEGIN');
    await push.query(`SELECT gc_lock_due_reviews($1, $2::text[], '{}'::text[], NULL, interval '1 minute')`, [repositoryId, [blob]]);
    // ...meanwhile the first manifest is deleted, which queues the link's review, due at once...
    await db.transaction((tx) => tx.manifests.deleteManifest(repo, manifest.digest));
    // ...and a worker's link batch claims it, judges the link garbage and deletes it: its trigger
    // queues the blob, whose review row the push holds, so the batch waits for the push.
    // Its lock wait bounded at 800 ms (the default is 200), still below the detector's 1 s.
    const workerDb = new MetadataDb(await openMetadataDb({ url: database.url }));
    const gc = new GarbageCollector(workerDb, new MemoryBlobStorage(), loadConfig({}, { gc: { reviewafter: 0, disabled: true, lockwait: 800 } }));
    let settled = false;
    const batch = gc.reviewBatch('links').finally(() => (settled = true));
    // Once the worker waits (polled: without the bound it waits until the push ends, so this is
    // always seen; with it, it may have given up already, and there is no cycle to close)...
    while (!settled) {
      const { rows } = await probe.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      if (Number(rows[0]!.n) > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // ...the push locks the link, waiting for the worker: a cycle.
    const linked = push.query('SELECT digest FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2::text[]) FOR KEY SHARE', [repositoryId, [blob]]);
    const result = await batch;
    expect((await linked).rows).toEqual([{ digest: blob }]);
    await push.query('COMMIT');
    await workerDb.close();

    expect(result.postponed).toBeGreaterThan(0);
    expect(gc.stats().errors).toBe(0);
    // pg_stat_database is the statistics collector's view: read it in a fresh snapshot.
    await probe.query('SELECT pg_stat_clear_snapshot()');
    expect(await deadlocks()).toBe(before);
    // The review waits, postponed, and the link is still there.
    expect((await probe.query('SELECT 1 FROM gc_link_review_queue WHERE repository_id = $1 AND digest = $2 AND review_after > now()', [repositoryId, blob])).rows).toHaveLength(1);
  });
});
