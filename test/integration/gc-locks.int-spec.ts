import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { sha256 } from '@lading/testing';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
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
});
