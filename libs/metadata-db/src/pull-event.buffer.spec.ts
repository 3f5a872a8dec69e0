import { systemScope } from '@lading/contracts';
import { blobEvent } from './event.factory';
import { openMetadataDb } from './metadata-db';
import { PullEventBuffer, type PullEventBufferOptions } from './pull-event.buffer';
import type { OutboxEntry } from './stores/outbox.store';
import { MetadataDb } from './unit-of-work';

const D = 'sha256:' + 'b'.repeat(64);
const scope = systemScope('blob.get', 'pull/app');
const pull = () => blobEvent('pull', 'pull/app', { digest: D, size: 3 }, 'http://x');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A database whose outbox records each multi-row write, and fails while `down` is set. */
function fakeDb() {
  const writes: OutboxEntry[][] = [];
  const state = { down: false };
  const db = {
    source: { instanceID: 'test' },
    transaction: async (work: (tx: unknown) => Promise<unknown>) =>
      work({
        outbox: {
          appendMany: async (entries: OutboxEntry[]) => {
            await sleep(1);
            if (state.down) throw new Error('database down');
            writes.push(entries);
          },
        },
      }),
  } as unknown as MetadataDb;
  return { db, writes, state };
}

const options = (o: Partial<PullEventBufferOptions> = {}): PullEventBufferOptions => ({
  enabled: true,
  flushIntervalMs: 40,
  maxBatch: 100,
  maxBuffered: 1000,
  ...o,
});

describe('PullEventBuffer', () => {
  it('records without I/O and writes the pulls of an interval in one multi-row write', async () => {
    const { db, writes } = fakeDb();
    const buffer = new PullEventBuffer(db, options());
    for (let i = 0; i < 7; i++) buffer.record(scope, pull());
    expect(writes).toHaveLength(0);
    expect(buffer.stats()).toMatchObject({ recorded: 7, pending: 7, written: 0 });
    await sleep(120);
    expect(writes.map((w) => w.length)).toEqual([7]);
    expect(writes[0][0].event).toMatchObject({ action: 'pull', target: { repository: 'pull/app', digest: D } });
    expect(buffer.stats()).toMatchObject({ written: 7, pending: 0, dropped: 0 });
  });

  it('writes a full batch at once, without waiting for the interval', async () => {
    const { db, writes } = fakeDb();
    const buffer = new PullEventBuffer(db, options({ flushIntervalMs: 60_000, maxBatch: 5 }));
    for (let i = 0; i < 12; i++) buffer.record(scope, pull());
    await sleep(50);
    expect(writes.map((w) => w.length)).toEqual([5, 5]);
    await buffer.close();
    expect(writes.map((w) => w.length)).toEqual([5, 5, 2]);
  });

  it('can lose at most what is held in memory: pulls older than an interval are already written', async () => {
    const { db } = fakeDb();
    const buffer = new PullEventBuffer(db, options());
    for (let i = 0; i < 10; i++) buffer.record(scope, pull());
    await sleep(120);
    for (let i = 0; i < 4; i++) buffer.record(scope, pull());
    // A kill -9 now loses exactly `pending`: the last 4, recorded less than an interval ago.
    expect(buffer.stats()).toMatchObject({ recorded: 14, written: 10, pending: 4 });
  });

  it('drops pulls beyond maxBuffered, counts them and logs once per burst', async () => {
    const { db, state } = fakeDb();
    state.down = true;
    const warnings: string[] = [];
    const buffer = new PullEventBuffer(db, options({ maxBuffered: 3, flushIntervalMs: 60_000 }), (m) => warnings.push(m));
    for (let i = 0; i < 10; i++) buffer.record(scope, pull());
    expect(buffer.stats()).toMatchObject({ recorded: 3, dropped: 7, pending: 3 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/dropped 1 pull events: buffer full \(3\) \(1 dropped since start/);
  });

  it('keeps the pulls while the database is down and writes them when it is back', async () => {
    const { db, writes, state } = fakeDb();
    state.down = true;
    const warnings: string[] = [];
    const buffer = new PullEventBuffer(db, options(), (m) => warnings.push(m));
    for (let i = 0; i < 5; i++) buffer.record(scope, pull());
    await sleep(150);
    expect(buffer.stats()).toMatchObject({ pending: 5, written: 0, dropped: 0 });
    expect(buffer.stats().failedWrites).toBeGreaterThanOrEqual(1);
    expect(warnings.join('\n')).toMatch(/writing 5 pull events failed \(database down\); retrying/);
    state.down = false;
    await sleep(150);
    expect(writes.flat()).toHaveLength(5);
    expect(buffer.stats()).toMatchObject({ pending: 0, written: 5, dropped: 0 });
  });

  it('writes what it holds on close, and counts pulls recorded after it as dropped', async () => {
    const { db, writes } = fakeDb();
    const buffer = new PullEventBuffer(db, options({ flushIntervalMs: 60_000 }));
    buffer.record(scope, pull());
    buffer.record(scope, pull());
    await buffer.close();
    expect(writes.flat()).toHaveLength(2);
    buffer.record(scope, pull());
    expect(buffer.stats()).toMatchObject({ written: 2, dropped: 1, pending: 0 });
  });

  it('records nothing when disabled', () => {
    const { db } = fakeDb();
    const buffer = new PullEventBuffer(db, options({ enabled: false }));
    buffer.record(scope, pull());
    expect(buffer.stats()).toMatchObject({ recorded: 0, pending: 0, dropped: 0 });
  });

  it('lands pull events in the outbox of a real database, unsent, in the order recorded', async () => {
    const real = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    try {
      const buffer = new PullEventBuffer(real, options());
      for (let i = 0; i < 3; i++) buffer.record(scope, blobEvent('pull', `pull/r${i}`, { digest: D, size: 3 }, 'http://x'));
      await buffer.close();
      const rows = await real.read.outbox.unsentOf(['pull/r0', 'pull/r1', 'pull/r2'], 10);
      expect(rows.map((r) => [r.repository, r.event.action])).toEqual([
        ['pull/r0', 'pull'],
        ['pull/r1', 'pull'],
        ['pull/r2', 'pull'],
      ]);
    } finally {
      await real.close();
    }
  }, 60_000);
});
