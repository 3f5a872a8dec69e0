import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { systemScope } from '@lading/contracts';
import { ManifestCache } from './manifest.cache';

const m = (digest: string, size = 10) => ({ digest, mediaType: 'x/y', payload: Buffer.alloc(size), size });

/** A stand-in for the database's write notifications (the store-level path is tested below). */
function fakeDb(soleWriter = true) {
  const listeners: ((r: string) => void)[] = [];
  return {
    soleWriter,
    onManifestsChanged: (l: (r: string) => void) => {
      listeners.push(l);
      return () => undefined;
    },
    write: (repo: string) => listeners.forEach((l) => l(repo)),
  };
}

describe('ManifestCache', () => {
  it('serves what it was given until the repository is written to', () => {
    const db = fakeDb();
    const c = new ManifestCache(db);
    c.set('a', 'v1', m('d1'), c.generation('a'));
    expect(c.get('a', 'v1')?.digest).toBe('d1');
    db.write('a');
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('does not keep a read that raced a write', () => {
    const db = fakeDb();
    const c = new ManifestCache(db);
    const before = c.generation('a');
    db.write('a'); // a write happened while the read was in flight
    c.set('a', 'v1', m('old'), before);
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('leaves other repositories alone', () => {
    const db = fakeDb();
    const c = new ManifestCache(db);
    c.set('a', 'v1', m('d1'), 0);
    c.set('b', 'v1', m('d2'), 0);
    db.write('a');
    expect(c.get('b', 'v1')?.digest).toBe('d2');
  });

  it('remembers a bounded number of repository generations, and a write still invalidates a repository it forgot', () => {
    const db = fakeDb();
    const c = new ManifestCache(db, 3);
    c.set('kept', 'v1', m('k1'), c.generation('kept'));
    const beforeWrite = c.generation('kept');
    db.write('kept');
    c.set('kept', 'v1', m('k2'), c.generation('kept'));
    // Writes to many other repositories push 'kept' out of the bounded generations.
    for (let i = 0; i < 1000; i++) db.write(`other/${i}`);
    expect(c.trackedRepositories).toBe(3);
    // Forgotten, its generation went forward, never back: the entry cached before is stale, not served.
    expect(c.get('kept', 'v1')).toBeUndefined();
    expect(c.generation('kept')).toBeGreaterThan(beforeWrite);
    // A read after that is cached and served, until the next write to it.
    c.set('kept', 'v1', m('k3'), c.generation('kept'));
    expect(c.get('kept', 'v1')?.digest).toBe('k3');
    db.write('kept');
    expect(c.get('kept', 'v1')).toBeUndefined();
    // An entry cached while its repository had no generation of its own, then a write, then the
    // repository forgotten: it must not come back to the generation the entry was cached at.
    c.set('fresh', 'v1', m('f1'), c.generation('fresh'));
    db.write('fresh');
    for (let i = 0; i < 10; i++) db.write(`more/${i}`);
    expect(c.get('fresh', 'v1')).toBeUndefined();
    // A read that raced a write to a forgotten repository is not kept either.
    const raced = c.generation('never/written');
    db.write('never/written');
    c.set('never/written', 'v1', m('n1'), raced);
    expect(c.get('never/written', 'v1')).toBeUndefined();
  });

  it('is off when this process is not the only writer of the database', () => {
    const c = new ManifestCache(fakeDb(false));
    c.set('a', 'v1', m('d1'), 0);
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('evicts the least recently used entries past its byte budget', () => {
    const c = new ManifestCache(fakeDb());
    for (let i = 0; i < 20; i++) c.set('a', `t${i}`, m(`d${i}`, 4 * 1024 * 1024), 0);
    expect(c.get('a', 't0')).toBeUndefined();
    expect(c.get('a', 't19')?.digest).toBe('d19');
  });

  describe('invalidated by the store layer, whoever writes', () => {
    let db: MetadataDb;
    beforeAll(async () => {
      db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    }, 60_000);
    afterAll(async () => {
      await db?.close();
    });

    it('is on for embedded PGlite, which only this process can open', () => {
      expect(db.soleWriter).toBe(true);
      expect(new ManifestCache(db).enabled).toBe(true);
    });

    it('drops a repository’s entries on a tag delete made directly through the stores', async () => {
      const c = new ManifestCache(db);
      const scope = systemScope('manifest.put', 'cache/app');
      const payload = Buffer.from('{"schemaVersion":2}');
      await db.transaction(async (tx) => {
        await tx.manifests.putManifest({
          repository: 'cache/app',
          digest: 'sha256:' + 'a'.repeat(64),
          mediaType: 'application/vnd.oci.image.index.v1+json',
          payload,
          configDigest: null,
          subjectDigest: null,
          artifactType: null,
          blobDigests: [],
          childDigests: [],
          tag: 'v1',
        });
        await tx.outbox.append(scope, { action: 'push', repository: 'cache/app', target: { tag: 'v1' } });
      });
      const found = await db.read.manifests.findByTag('cache/app', 'v1');
      c.set('cache/app', 'v1', found!, c.generation('cache/app'));
      expect(c.get('cache/app', 'v1')).toBeDefined();
      // Not through ManifestService: any writer passing the store invalidates (GC will, too).
      await db.transaction((tx) => tx.tags.deleteTag('cache/app', 'v1'));
      expect(c.get('cache/app', 'v1')).toBeUndefined();
    });
  });
});
