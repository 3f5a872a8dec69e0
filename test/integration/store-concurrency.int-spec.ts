import { Client } from 'pg';
import { MetadataDb, openMetadataDb, type ManifestRecord } from '@lading/metadata-db';
import { systemScope } from '@lading/contracts';
import { eventually, randomImage, RegistryTestClient } from '@lading/testing';
import { createTestDatabase, startSplit, type SplitStack } from '../support/registry-processes';

/** A promise and its resolver, to hold a transaction open at an exact point. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

const D = (c: string) => `sha256:${c.repeat(64)}`;

function manifestRecord(repository: string, digest: string, blobDigests: string[], tag?: string): ManifestRecord {
  return {
    repository,
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    payload: Buffer.from(`{"digest":"${digest}"}`),
    configDigest: blobDigests[0] ?? null,
    subjectDigest: null,
    artifactType: null,
    blobDigests,
    childDigests: [],
    tag,
  };
}

describe('the store layer on PostgreSQL under concurrency', () => {
  let pg: { url: string; drop(): Promise<void> };
  let db: MetadataDb;
  let admin: Client;

  beforeAll(async () => {
    pg = await createTestDatabase();
    db = new MetadataDb(await openMetadataDb({ url: pg.url, poolSize: 4 }));
    admin = new Client({ connectionString: pg.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await db?.close();
    await pg?.drop();
  });

  /** True once an open transaction has written to `table` (it holds the table's RowExclusiveLock). */
  async function holdsRowExclusiveOn(table: string): Promise<boolean> {
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = $1 AND l.mode = 'RowExclusiveLock'`,
      [table],
    );
    return rows[0].n > 0;
  }

  /** True once some backend of this database waits for a row lock. */
  async function someoneWaitsOnALock(): Promise<boolean> {
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows[0].n > 0;
  }

  it('a blob unlink waits for a manifest put that checked the blob, so the manifest never lands without it', async () => {
    const scope = systemScope('manifest.put', 'lock/app');
    await db.transaction((tx) => tx.blobs.linkBlob('lock/app', { digest: D('1'), size: 10 }));
    const hold = gate();
    const put = db.transaction(async (tx) => {
      const refused = await tx.manifests.putManifest(manifestRecord('lock/app', D('a'), [D('1')], 'v1'));
      expect(refused).toBeUndefined();
      await tx.outbox.append(scope, { action: 'push', repository: 'lock/app', target: { digest: D('a') } });
      await hold.wait;
    });
    await eventually(() => holdsRowExclusiveOn('manifests'));
    let unlinked = false;
    const unlink = db.transaction((tx) => tx.blobs.unlinkBlob('lock/app', D('1'))).then((r) => {
      unlinked = true;
      return r;
    });
    // The unlink must block on the link the manifest's check locked, not slip in before the commit.
    await eventually(someoneWaitsOnALock);
    expect(unlinked).toBe(false);
    hold.open();
    await put;
    expect(await unlink).toEqual({ digest: D('1'), size: 10 });
    expect(await db.read.manifests.findByDigest('lock/app', D('a'))).toBeDefined();
  });

  it('a manifest put after a committed unlink is refused with the missing blob, and writes nothing', async () => {
    await db.transaction((tx) => tx.blobs.linkBlob('lock/two', { digest: D('2'), size: 10 }));
    await db.transaction((tx) => tx.blobs.unlinkBlob('lock/two', D('2')));
    const refused = await db.transaction((tx) => tx.manifests.putManifest(manifestRecord('lock/two', D('b'), [D('2')])));
    expect(refused).toEqual({ missing: D('2') });
    expect(await db.read.manifests.findByDigest('lock/two', D('b'))).toBeUndefined();
  });

  it('a manifest delete waits for a put of the same digest that holds the row, and neither fails', async () => {
    await db.transaction((tx) => tx.manifests.putManifest(manifestRecord('race/app', D('c'), [])));
    const hold = gate();
    const put = db.transaction(async (tx) => {
      expect(await tx.manifests.putManifest(manifestRecord('race/app', D('c'), [], 'latest'))).toBeUndefined();
      await hold.wait;
    });
    await eventually(() => holdsRowExclusiveOn('manifests'));
    const del = db.transaction((tx) => tx.manifests.deleteManifest('race/app', D('c')));
    await eventually(someoneWaitsOnALock);
    hold.open();
    await put;
    // The delete ran after the put committed: it removes the manifest and the tag with it.
    expect(await del).toBeDefined();
    expect(await db.read.manifests.findByTag('race/app', 'latest')).toBeUndefined();
  });
});

describe('split mode on PostgreSQL: manifest writes racing deletes', () => {
  let stack: SplitStack;
  let c: RegistryTestClient;
  beforeAll(async () => {
    stack = await startSplit({ withWorkers: false });
    c = new RegistryTestClient(stack.url);
  });
  afterAll(async () => {
    await c?.close();
    await stack?.stop();
  });

  it('a PUT by tag racing a DELETE of the same digest never answers 5xx', async () => {
    const img = randomImage({ layers: 1, layerSize: 64 });
    expect((await c.pushImage('race/put-delete', img, 'v0')).status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const [put, del] = await Promise.all([
        c.putManifest('race/put-delete', `t${i}`, img.manifest, img.mediaType),
        c.call('DELETE', `/v2/race/put-delete/manifests/${img.digest}`),
      ]);
      statuses.push(put.status, del.status);
      expect([201]).toContain(put.status);
      expect([202, 404]).toContain(del.status);
    }
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });

  it('a manifest PUT racing a DELETE of its blob never answers 5xx, and a 201 manifest had its blob at commit', async () => {
    for (let i = 0; i < 20; i++) {
      const img = randomImage({ layers: 1, layerSize: 64 });
      for (const b of [img.config, ...img.layers]) expect((await c.pushBlob('race/blob-delete', b)).status).toBe(201);
      const [put, del] = await Promise.all([
        c.putManifest('race/blob-delete', `t${i}`, img.manifest, img.mediaType),
        c.call('DELETE', `/v2/race/blob-delete/blobs/${img.layers[0].digest}`),
      ]);
      expect([201, 400]).toContain(put.status);
      expect(del.status).toBe(202);
      if (put.status === 400) expect(put.json().errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
    }
  });
});
