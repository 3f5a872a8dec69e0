import { createHash, randomUUID } from 'node:crypto';
import { openMetadataDb } from '../metadata-db';
import { MetadataDb } from '../unit-of-work';
import { ReconcileStore } from './reconcile.store';

const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('ReconcileStore (on PGlite)', () => {
  let db: MetadataDb;
  let store: ReconcileStore;
  beforeAll(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    store = new ReconcileStore(db);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await db.dataSource.query(
      'DELETE FROM blob_commit_pins; DELETE FROM upload_sessions; DELETE FROM repository_blobs; DELETE FROM blobs;',
    );
  });

  const link = (digest: string, size: number) =>
    db.transaction((tx) => tx.blobs.linkBlob('reconcile/app', { digest, size }));
  const digestsInTable = async () =>
    (await db.dataSource.query('SELECT digest FROM blobs ORDER BY digest')).map((r: { digest: string }) => r.digest);

  it('lists every row in ascending digest order across pages, with totals and sizes of given digests', async () => {
    const digests = Array.from({ length: 7 }, (_, i) => digestOf(`blob ${i}`));
    for (const [i, d] of digests.entries()) await link(d, i * 10);
    const rows = [];
    for await (const row of store.rows(3)) rows.push(row);
    expect(rows.map((r) => r.digest)).toEqual([...digests].sort());
    expect(rows.find((r) => r.digest === digests[4])).toMatchObject({ size: 40, createdAt: expect.any(Date) });
    expect(await store.totals()).toEqual({ count: 7, bytes: 210 });
    const unknown = digestOf('no row');
    expect(await store.sizesOf([digests[2], unknown])).toEqual(new Map([[digests[2], 20]]));
    expect(await store.sizesOf([])).toEqual(new Map());
  });

  it('deletes the bytes of the digests no row knows and no upload commits, leaving the tables as they were', async () => {
    const known = digestOf('known');
    await link(known, 1);
    const [orphan, pinned, committing] = [digestOf('orphan'), digestOf('pinned'), digestOf('committing')];
    // A single-request upload's commit pin, and a chunked session that verified its digest.
    await db.dataSource.query('INSERT INTO blob_commit_pins (id, digest) VALUES ($1, $2)', [randomUUID(), pinned]);
    const id = randomUUID();
    await db.read.uploads.createSession(id, 'reconcile/app');
    await db.dataSource.query('UPDATE upload_sessions SET committing_digest = $1 WHERE id = $2', [committing, id]);
    const removed: string[][] = [];
    const outcomes = await store.deleteUnknownBlobs(
      [orphan, known, pinned, committing].map((digest) => ({ digest, size: 5 })),
      async (digests) => void removed.push(digests),
    );
    expect(Object.fromEntries(outcomes)).toEqual({
      [orphan]: 'deleted',
      [known]: 'known',
      [pinned]: 'committing',
      [committing]: 'committing',
    });
    expect(removed).toEqual([[orphan]]);
    expect(await digestsInTable()).toEqual([known]);
  });

  it('removes nothing when every digest has a row', async () => {
    const known = digestOf('known');
    await link(known, 5);
    const remove = jest.fn(async () => undefined);
    expect(await store.deleteUnknownBlobs([{ digest: known, size: 5 }], remove)).toEqual(new Map([[known, 'known']]));
    expect(remove).not.toHaveBeenCalled();
    expect(await store.totals()).toEqual({ count: 1, bytes: 5 });
  });

  it('rolls the claim back when the delete fails, and passes the error on', async () => {
    const orphan = digestOf('failing delete');
    await expect(
      store.deleteUnknownBlobs([{ digest: orphan, size: 5 }], async () => {
        throw new Error('storage down');
      }),
    ).rejects.toThrow('storage down');
    expect(await digestsInTable()).toEqual([]);
  });
});
