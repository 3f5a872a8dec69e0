import { randomUUID } from 'node:crypto';
import { envelopeFields, type RegistryEvent } from '@lading/contracts';
import { MetadataDb, NO_REPOSITORY, openMetadataDb } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { distributionFieldsFor, randomBlob, randomImage, type TestBlob } from '@lading/testing';
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

  it("writes a blob's delete event in the transaction that removes it: none while storage fails, one once the bytes are gone", async () => {
    const blob = randomBlob(100);
    await pushBlob(blob);
    await db.transaction((tx) => tx.blobs.unlinkBlob(REPO, blob.digest));
    storage.failing = true;

    await gc.runOnce();

    expect(deletes(await events(), NO_REPOSITORY)).toEqual([]);
    expect(await storage.statBlob(blob.digest)).not.toBeNull();
    expect(gc.stats().errors).toBe(1);

    storage.failing = false;
    // The failed batch was postponed by the error backoff: make it due again.
    await db.dataSource.query('UPDATE gc_blob_review_queue SET review_after = now()');
    await gc.runOnce();

    expect(deletes(await events(), NO_REPOSITORY)).toEqual([blob.digest]);
    expect(await storage.statBlob(blob.digest)).toBeNull();
  });
});
