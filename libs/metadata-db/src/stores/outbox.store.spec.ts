import { randomUUID } from 'node:crypto';
import { encodeRegistryEvent, systemScope } from '@lading/contracts';
import { blobEvent } from '../event.factory';
import { openMetadataDb } from '../metadata-db';
import { MetadataDb } from '../unit-of-work';

const D = 'sha256:' + 'a'.repeat(64);

describe('OutboxStore (the relay side, on PGlite)', () => {
  let db: MetadataDb;
  beforeAll(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
  }, 60_000);
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await db.dataSource.query('DELETE FROM event_outbox; DELETE FROM event_outbox_unsent; DELETE FROM outbox_leases;');
  });

  /** Appends one push event per repository name, in the order given; returns their ids. */
  async function append(...repositories: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const repository of repositories) {
      const e = await db.transaction((tx) =>
        tx.outbox.append(systemScope('upload.complete', repository), blobEvent('push', repository, { digest: D, size: 1 }, 'http://x')),
      );
      ids.push(e.id);
    }
    return ids;
  }

  const claim = (owner: string, repositories = 10, leaseMs = 60_000) =>
    db.read.outbox.claimRepositories({ owner, leaseMs, repositories });

  it('appends many events in one statement, in the order given', async () => {
    const events = ['r/a', 'r/b', 'r/a'].map((repository) => ({
      event: { ...blobEventEnvelope(repository), id: randomUUID() },
      traceparent: null,
      tenant: null,
    }));
    await db.transaction((tx) => tx.outbox.appendMany(events));
    const rows = await db.read.outbox.unsentOf(['r/a', 'r/b'], 10);
    expect(rows.map((r) => r.id)).toEqual(events.map((e) => e.event.id));
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((a, b) => a - b));
    // The envelope comes back as the text written, in the reference registry's field order: what the relay sends.
    expect(rows.map((r) => r.payload)).toEqual(events.map((e) => encodeRegistryEvent(e.event)));
    expect(rows[1].event).toEqual(JSON.parse(encodeRegistryEvent(events[1].event)));
  });

  it('claims repositories oldest waiting event first, and never one that another relay holds', async () => {
    await append('r/a', 'r/b', 'r/a', 'r/c');
    const [a, b] = [randomUUID(), randomUUID()];
    expect(await claim(a, 2)).toEqual(['r/a', 'r/b']);
    expect(await claim(b, 10)).toEqual(['r/c']);
    expect(await claim(b, 10)).toEqual([]);
  });

  it('hands the claimer a gap-free prefix of each repository, oldest first', async () => {
    const ids = await append('r/a', 'r/b', 'r/a', 'r/a', 'r/b');
    const owner = randomUUID();
    const repos = await claim(owner);
    const first = await db.read.outbox.unsentOf(repos, 3);
    expect(first.map((r) => r.id)).toEqual(ids.slice(0, 3));
    expect(first.every((r) => r.event.target.repository === r.repository)).toBe(true);
  });

  it('marks sent and releases in one statement, so the next claim starts after what was sent', async () => {
    const ids = await append('r/a', 'r/a', 'r/a');
    const [a, b] = [randomUUID(), randomUUID()];
    const repos = await claim(a);
    const batch = await db.read.outbox.unsentOf(repos, 2);
    expect(await db.read.outbox.markSent(a, batch.map((r) => r.seq), repos)).toBe(2);
    expect(await claim(b)).toEqual(['r/a']);
    expect((await db.read.outbox.unsentOf(['r/a'], 10)).map((r) => r.id)).toEqual([ids[2]]);
    // Marking again (a resend after a lost lease) changes nothing.
    expect(await db.read.outbox.markSent(a, batch.map((r) => r.seq), repos)).toBe(0);
    expect(await claim(a)).toEqual([]);
  });

  it('takes over an expired lease; the old owner no longer renews it', async () => {
    await append('r/a');
    const [a, b] = [randomUUID(), randomUUID()];
    expect(await claim(a, 10, -1)).toEqual(['r/a']);
    expect(await claim(b)).toEqual(['r/a']);
    expect(await db.read.outbox.renewLeases(a, 60_000)).toEqual([]);
    expect(await db.read.outbox.renewLeases(b, 60_000)).toEqual(['r/a']);
    await db.read.outbox.releaseLeases(a, ['r/a']);
    expect(await claim(a)).toEqual([]);
    await db.read.outbox.releaseLeases(b);
    expect(await claim(a)).toEqual(['r/a']);
  });

  it('finds other repositories behind a long backlog of one that is claimed', async () => {
    await append(...Array.from({ length: 50 }, () => 'r/hot'), 'r/cold');
    const [a, b] = [randomUUID(), randomUUID()];
    expect(await claim(a, 1)).toEqual(['r/hot']);
    expect(await db.read.outbox.claimRepositories({ owner: b, leaseMs: 60_000, repositories: 10, scan: 20 })).toEqual(['r/cold']);
  });

  it('looks no further than the lookahead past repositories that are claimed', async () => {
    await append(...Array.from({ length: 50 }, () => 'r/hot'), 'r/cold');
    const [a, b] = [randomUUID(), randomUUID()];
    expect(await claim(a, 1)).toEqual(['r/hot']);
    const claimB = (lookahead: number) => db.read.outbox.claimRepositories({ owner: b, leaseMs: 60_000, repositories: 10, scan: 20, lookahead });
    expect(await claimB(50)).toEqual([]);
    expect(await claimB(51)).toEqual(['r/cold']);
  });

  it('reports the backlog by the database clock, and prunes only what was sent long enough ago', async () => {
    expect(await db.read.outbox.backlog()).toEqual({ unsent: 0, oldestAgeMs: null });
    const ids = await append('r/a', 'r/a', 'r/b');
    const backlog = await db.read.outbox.backlog();
    expect(backlog.unsent).toBe(3);
    expect(backlog.oldestAgeMs).toBeGreaterThanOrEqual(0);
    const owner = randomUUID();
    const seqs = (await db.read.outbox.unsentOf(['r/a', 'r/b'], 10)).filter((r) => ids.slice(0, 2).includes(r.id)).map((r) => r.seq);
    await db.read.outbox.markSent(owner, seqs, []);
    expect(await db.read.outbox.pruneSent(60_000, 100)).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await db.read.outbox.pruneSent(1, 1)).toBe(1);
    expect(await db.read.outbox.pruneSent(1, 100)).toBe(1);
    expect((await db.read.outbox.backlog()).unsent).toBe(1);
  });
});

function blobEventEnvelope(repository: string) {
  return {
    id: '',
    timestamp: new Date().toISOString(),
    action: 'pull' as const,
    target: { repository, digest: D },
    request: {},
    actor: {},
    source: { instanceID: 'test' },
  };
}
