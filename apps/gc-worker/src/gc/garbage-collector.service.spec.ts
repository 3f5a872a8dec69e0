import { randomUUID } from 'node:crypto';
import { envelopeFields, type RegistryEvent } from '@lading/contracts';
import { MetadataDb, NO_REPOSITORY, openMetadataDb } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { distributionFieldsFor, indexOf, randomBlob, randomImage, type TestBlob } from '@lading/testing';
import { GarbageCollector, GC_ACTOR } from './garbage-collector.service';

jest.setTimeout(60_000);

const REPO = 'gc-events/app';

/** The memory driver, whose blob removal fails while `failing` is set (a storage outage). */
class FlakyStorage extends MemoryBlobStorage {
  failing = false;
  override async deleteBlobs(digests: readonly string[]): Promise<void> {
    if (this.failing) throw new Error('storage unavailable');
    return super.deleteBlobs(digests);
  }
}

describe('GarbageCollector events', () => {
  let db: MetadataDb;
  let storage: FlakyStorage;
  let gc: GarbageCollector;

  beforeEach(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    storage = new FlakyStorage();
    const config = loadConfig({}, { gc: { reviewafter: 0, deleteuntagged: true, disabled: true } });
    await db.read.gc.setReviewAfter(0);
    gc = new GarbageCollector(db, storage, config);
  });
  afterEach(async () => db.close());

  /** Stores the bytes and links the blob, as a push does (stores write no events: services do). */
  async function pushBlob(blob: TestBlob): Promise<void> {
    const id = randomUUID();
    await storage.createUpload(id);
    const { parts } = await storage.writePart(id, [], (async function* () {
      yield blob.bytes;
    })());
    await storage.commitUpload(id, parts, blob.digest);
    await db.transaction((tx) => tx.blobs.linkBlob(REPO, { digest: blob.digest, size: blob.size }));
  }

  const events = async (): Promise<RegistryEvent[]> => (await db.read.outbox.unsentOf([REPO, NO_REPOSITORY], 1000)).map((e) => e.event);
  const deletes = (all: RegistryEvent[], repository: string) => all.filter((e) => e.target.repository === repository).map((e) => e.target.digest).sort();

  it('writes a delete event by lading-gc, in the reference envelope, for the manifest, each link and each blob whose bytes it removes', async () => {
    const image = randomImage({ layers: 1 });
    for (const b of [image.config, ...image.layers]) await pushBlob(b);
    const blobs = [image.config.digest, image.layers[0]!.digest];
    await db.transaction((tx) =>
      tx.manifests.putManifest({ repository: REPO, digest: image.digest, mediaType: image.mediaType, payload: image.manifest, configDigest: image.config.digest, subjectDigest: null, artifactType: null, blobDigests: blobs, childDigests: [] }),
    );
    expect(await events()).toEqual([]);

    await gc.runOnce();

    const all = await events();
    expect(all.every((e) => e.action === 'delete' && e.actor.name === GC_ACTOR)).toBe(true);
    // In the repository: the untagged manifest and both links; registry-wide: both blobs' bytes.
    expect(deletes(all, REPO)).toEqual([image.digest, ...blobs].sort());
    expect(deletes(all, NO_REPOSITORY)).toEqual([...blobs].sort());
    for (const d of blobs) expect(await storage.statBlob(d)).toBeNull();
    for (const e of all) {
      const reference = distributionFieldsFor(e);
      expect(envelopeFields(e.target).map((f) => `target.${f}`).sort()).toEqual(reference.filter((f) => f.startsWith('target.')));
      // Nothing the reference registry's delete lacks, but the actor's name (Distribution's when a user is known).
      expect(envelopeFields(e).filter((f) => !reference.includes(f) && f !== 'actor.name: string')).toEqual([]);
    }
  });

  /** Puts `image` untagged (its blobs pushed first) and returns what an index or a referrer names it by. */
  async function putImage(image: ReturnType<typeof randomImage>): Promise<{ digest: string; size: number; mediaType: string }> {
    for (const b of [image.config, ...image.layers]) await pushBlob(b);
    await db.transaction((tx) =>
      tx.manifests.putManifest({ repository: REPO, digest: image.digest, mediaType: image.mediaType, payload: image.manifest, configDigest: image.config.digest, subjectDigest: null, artifactType: null, blobDigests: [image.config.digest, ...image.layers.map((l) => l.digest)], childDigests: [] }),
    );
    return { digest: image.digest, size: image.manifest.length, mediaType: image.mediaType };
  }

  it.each([
    ['an index and its child', 'index'],
    ['a subject and its referrer', 'subject'],
  ] as const)('collects %s that fall due in one batch: deleting the one queues the other again, and that review is kept', async (_name, kind) => {
    const child = await putImage(randomImage({ layers: 1 }));
    if (kind === 'index') {
      const ix = indexOf([child]);
      await db.transaction((tx) =>
        tx.manifests.putManifest({ repository: REPO, digest: ix.digest, mediaType: ix.mediaType, payload: ix.manifest, configDigest: null, subjectDigest: null, artifactType: null, blobDigests: [], childDigests: [child.digest] }),
      );
    } else {
      // The child is the referrer here: its subject, untagged, goes first, and the referrer with it.
      const referrer = randomImage({ layers: 1, subject: child, artifactType: 'application/vnd.example.sbom' });
      for (const b of [referrer.config, ...referrer.layers]) await pushBlob(b);
      await db.transaction((tx) =>
        tx.manifests.putManifest({ repository: REPO, digest: referrer.digest, mediaType: referrer.mediaType, payload: referrer.manifest, configDigest: referrer.config.digest, subjectDigest: child.digest, artifactType: 'application/vnd.example.sbom', blobDigests: [referrer.config.digest, referrer.layers[0]!.digest], childDigests: [] }),
      );
    }
    // Both reviews (each manifest's push) are due now: one batch claims both and judges the second
    // live while the first still stands.
    expect(await db.read.gc.dueCount('manifests')).toBe(2);

    await gc.runOnce();

    expect(await db.dataSource.query('SELECT digest FROM manifests')).toEqual([]);
    expect(await db.read.gc.referencedBlobDigests()).toEqual([]);
    const stored: string[] = [];
    for await (const d of storage.listBlobs()) stored.push(d);
    expect(stored).toEqual([]);
  });

  it("writes a blob's delete event in the transaction that removes it: none while storage fails, one once the bytes are gone", async () => {
    const blob = randomBlob(100);
    await pushBlob(blob);
    await db.transaction((tx) => tx.blobs.unlinkBlob(REPO, blob.digest));
    storage.failing = true;

    await gc.runOnce();

    expect(deletes(await events(), NO_REPOSITORY)).toEqual([]);
    expect(await storage.statBlob(blob.digest)).not.toBeNull();
    expect(gc.stats().errors).toBe(1);

    // The failed batch was postponed by the error backoff (what it had claimed, though it failed midway)...
    expect(await db.read.gc.dueCount('blobs')).toBe(0);
    expect((await db.read.gc.status()).queues.find((q) => q.queue === 'blobs')!.depth).toBe(1);
    storage.failing = false;
    // ...make it due again.
    await db.dataSource.query('UPDATE gc_blob_review_queue SET review_after = now()');
    await gc.runOnce();

    expect(deletes(await events(), NO_REPOSITORY)).toEqual([blob.digest]);
    expect(await storage.statBlob(blob.digest)).toBeNull();
  });
});
