import { MetadataDb, openMetadataDb, type GcUnsafeOptions } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { MemoryBlobStorage } from '@lading/storage';
import { GarbageCollector } from './garbage-collector.service';
import { sha256 } from '@lading/testing';
import { leftAfterCollectingAll, raceProblems, resetWorld, runInterleaving, type RaceViolation, type RaceWorld } from './race-harness';

jest.setTimeout(30 * 60_000);

/** Interleavings per run: the 10,000 (about 33 ms of CPU each on PGlite here); LADING_TEST_GC_RACE_RUNS overrides. */
const RUNS = Number(process.env.LADING_TEST_GC_RACE_RUNS ?? 10_000);
/** Interleavings between resets: state left by one is the start of the next. */
const RESET_EVERY = 20;

async function world(unsafe?: GcUnsafeOptions): Promise<RaceWorld> {
  const db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }), { gcUnsafe: unsafe });
  const storage = new MemoryBlobStorage();
  // The hardest case: no review delay, untagged manifests collected too.
  const config = loadConfig({}, { gc: { reviewafter: 0, deleteuntagged: true, disabled: true } });
  await db.read.gc.setReviewAfter(0);
  return { db, storage, collectors: [new GarbageCollector(db, storage, config)] };
}

/**
 * Runs `runs` interleavings from `firstSeed`. Before each reset, with `liveness`, the state the
 * last group left is collected whole: anything left behind is a leak (reported as the group's
 * last seed's violation).
 */
async function explore(w: RaceWorld, runs: number, firstSeed: number, liveness = false): Promise<{ violations: RaceViolation[]; seeds: number }> {
  const leaks = async (i: number): Promise<RaceViolation[]> =>
    liveness && i > 0 ? (await leftAfterCollectingAll(w)).map((problem) => ({ seed: firstSeed + i - 1, problem: `leak after the group ending at this seed: ${problem}`, trace: [] })) : [];
  for (let i = 0; i < runs; i++) {
    if (i % RESET_EVERY === 0) {
      const leaked = await leaks(i);
      if (leaked.length > 0) return { violations: leaked, seeds: i };
      await resetWorld(w);
    }
    const violations = await runInterleaving(w, firstSeed + i);
    if (violations.length > 0) return { violations, seeds: i + 1 };
  }
  const leaked = await leaks(runs);
  return { violations: leaked, seeds: runs };
}

describe('GC race harness (PGlite, review delay 0)', () => {
  it('reports a tagged image that cannot be pulled: a blob not linked, an index child gone, bytes gone', async () => {
    const w = await world();
    try {
      const [config, layer] = ['config', 'layer'].map((b) => ({ digest: sha256(Buffer.from(b)), size: b.length }));
      const image = { digest: sha256(Buffer.from('image')), payload: Buffer.from('image') };
      const index = { digest: sha256(Buffer.from('index')), payload: Buffer.from('index') };
      await w.db.transaction(async (tx) => {
        for (const b of [config!, layer!]) await tx.blobs.linkBlob('race/a', b);
        const base = { repository: 'race/a', configDigest: null, subjectDigest: null, artifactType: null };
        await tx.manifests.putManifest({ ...base, ...image, mediaType: 'application/vnd.oci.image.manifest.v1+json', blobDigests: [config!.digest, layer!.digest], childDigests: [] });
        await tx.manifests.putManifest({ ...base, ...index, mediaType: 'application/vnd.oci.image.index.v1+json', blobDigests: [], childDigests: [image.digest], tag: 'multi' });
      });
      const bytesGone = [config!, layer!].map((b) => `the bytes of referenced blob ${b.digest.slice(7, 13)} are gone`);
      expect((await raceProblems(w)).sort()).toEqual(bytesGone.sort()); // the storage holds nothing
      await w.db.dataSource.query('DELETE FROM repository_blobs WHERE digest = $1', [layer!.digest]);
      expect(await raceProblems(w)).toContain(`blob not linked: race/a ${layer!.digest}`);
      await w.db.dataSource.query('DELETE FROM manifests WHERE digest = $1', [image.digest]);
      expect(await raceProblems(w)).toContain(`child missing: race/a ${image.digest}`);
    } finally {
      await w.db.close();
    }
  });

  it(`finds no broken image in ${RUNS} seeded interleavings of pushes, deletes and GC, and no leak once all is untagged`, async () => {
    const w = await world();
    try {
      const { violations } = await explore(w, RUNS, 1, true);
      if (violations.length > 0) {
        const v = violations[0]!;
        throw new Error(`seed ${v.seed}: ${violations.map((x) => x.problem).join('; ')}\n  ${v.trace.join('\n  ')}`);
      }
      expect(violations).toEqual([]);
      // The interleavings did collect garbage (a harness whose collector never deletes proves nothing).
      const counters = w.collectors[0]!.stats();
      for (const queue of ['blobs', 'links', 'manifests'] as const) expect(counters.byQueue[queue].deleted).toBeGreaterThan(RUNS / 20);
    } finally {
      await w.db.close();
    }
  });

  it('finds the broken image when the collector ignores uploads that are committing a blob', async () => {
    const w = await world({ ignoreCommitPins: true });
    try {
      const { violations } = await explore(w, Math.max(RUNS, 2_000), 1);
      expect(violations.length).toBeGreaterThan(0);
      expect(violations[0]!.problem).toMatch(/bytes of referenced blob .* are gone/);
    } finally {
      await w.db.close();
    }
  });
});
