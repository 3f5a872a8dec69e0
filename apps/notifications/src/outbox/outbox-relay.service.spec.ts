import { Logger } from '@nestjs/common';
import { systemScope } from '@lading/contracts';
import { InProcessEventBus, type BusEvent, type EventPublisher } from '@lading/events';
import { blobEvent, MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { loadConfig } from '@lading/nest-common';
import { eventually } from '@lading/testing';
import { OutboxRelayService } from './outbox-relay.service';

const D = 'sha256:' + 'c'.repeat(64);
const config = loadConfig({
  LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '20ms',
  LADING_NOTIFICATIONS_OUTBOX_BATCHSIZE: '25',
  LADING_NOTIFICATIONS_OUTBOX_LEASE: '5s',
});

/** A publisher that records what it was given, after a random delay, and refuses while `down`. */
class RecordingBus implements EventPublisher {
  readonly got: BusEvent[] = [];
  down = false;
  refused = 0;
  private readonly inner = new InProcessEventBus();
  async connect(): Promise<void> {
    if (this.down) throw new Error('bus down');
  }
  async publish(events: readonly BusEvent[]): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.random() * 5));
    if (this.down) {
      this.refused++;
      throw new Error('bus down');
    }
    this.got.push(...events);
  }
  health() {
    return this.inner.health();
  }
  async close(): Promise<void> {}
}

describe('OutboxRelayService (on PGlite)', () => {
  let db: MetadataDb;
  const relays: OutboxRelayService[] = [];
  beforeAll(async () => {
    Logger.overrideLogger(false);
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
  }, 60_000);
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await db.dataSource.query('DELETE FROM event_outbox; DELETE FROM event_outbox_unsent; DELETE FROM outbox_leases;');
  });
  afterAll(async () => {
    await db?.close();
  });

  function relay(bus: EventPublisher): OutboxRelayService {
    const r = new OutboxRelayService(db, bus, config);
    relays.push(r);
    return r;
  }

  /** Appends `n` events round-robin over `repositories`, each in its own transaction; returns their ids in order. */
  async function append(n: number, repositories: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const repository = repositories[i % repositories.length];
      const e = await db.transaction((tx) =>
        tx.outbox.append(systemScope('upload.complete', repository), blobEvent('push', repository, { digest: D, size: i }, 'http://x')),
      );
      ids.push(e.id);
    }
    return ids;
  }

  /** The ids of `repository` in first-seen order. */
  const orderOf = (events: { id: string; repository: string }[], repository: string) => [
    ...new Set(events.filter((e) => e.repository === repository).map((e) => e.id)),
  ];

  it('publishes every event, each repository in order, and marks them sent only after the bus took them', async () => {
    const bus = new RecordingBus();
    const ids = await append(60, ['r/a', 'r/b', 'r/c']);
    relay(bus).start();
    await eventually(() => bus.got.length >= 60, 20_000, 'all events');
    expect(new Set(bus.got.map((e) => e.id))).toEqual(new Set(ids));
    expect((await db.read.outbox.backlog()).unsent).toBe(0);
    const appended = ids.map((id, i) => ({ id, repository: ['r/a', 'r/b', 'r/c'][i % 3] }));
    for (const r of ['r/a', 'r/b', 'r/c']) expect(orderOf(bus.got, r)).toEqual(orderOf(appended, r));
  }, 30_000);

  it('relays at once what this process appends, without waiting for a poll', async () => {
    const bus = new RecordingBus();
    const slow = new OutboxRelayService(db, bus, loadConfig({ LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '1h' }));
    relays.push(slow);
    slow.start();
    await new Promise((r) => setTimeout(r, 100));
    const [id] = await append(1, ['r/now']);
    await eventually(() => bus.got.some((e) => e.id === id), 5_000, 'the kicked relay');
  }, 30_000);

  it('keeps everything in the outbox while the bus is down and sends it all, in order, when it is back', async () => {
    const bus = new RecordingBus();
    bus.down = true;
    const r = relay(bus);
    r.start();
    const ids = await append(40, ['r/a', 'r/b']);
    await new Promise((res) => setTimeout(res, 600));
    expect(bus.got).toHaveLength(0);
    expect((await db.read.outbox.backlog()).unsent).toBe(40);
    expect(r.stats().failures).toBeGreaterThan(0);
    expect(r.stats().lastError).toBe('bus down');
    bus.down = false;
    await eventually(() => new Set(bus.got.map((e) => e.id)).size === 40, 20_000, 'the backlog');
    const appended = ids.map((id, i) => ({ id, repository: i % 2 ? 'r/b' : 'r/a' }));
    for (const repo of ['r/a', 'r/b']) expect(orderOf(bus.got, repo)).toEqual(orderOf(appended, repo));
    await eventually(() => r.stats().lastError === undefined, 5_000, 'the relay to recover');
  }, 30_000);

  it('keeps each repository in order with two relays taking turns, while events keep coming', async () => {
    const bus = new RecordingBus();
    const repos = ['r/a', 'r/b', 'r/c', 'r/d', 'r/e'];
    const [one, two] = [relay(bus), relay(bus)];
    one.start();
    two.start();
    const ids = await append(400, repos);
    await eventually(() => new Set(bus.got.map((e) => e.id)).size === 400, 60_000, 'every event');
    const appended = ids.map((id, i) => ({ id, repository: repos[i % repos.length] }));
    for (const repo of repos) expect(orderOf(bus.got, repo)).toEqual(orderOf(appended, repo));
    // Every event once, except those a relay knows it sent again: on a starved machine a batch can
    // outlive its 5 s lease, the other relay takes the repository over and resends (at least once).
    expect(bus.got.length - 400).toBe(one.stats().duplicates + two.stats().duplicates);
    expect(one.stats().relayed + two.stats().relayed).toBe(400);
    expect(one.stats().relayed).toBeGreaterThan(0);
    expect(two.stats().relayed).toBeGreaterThan(0);
  }, 90_000);

  it('gives up its leases when stopped, so another relay carries on at once', async () => {
    const bus = new RecordingBus();
    const first = relay(bus);
    bus.down = true;
    first.start();
    await append(5, ['r/a']);
    await new Promise((r) => setTimeout(r, 200));
    await first.stop();
    bus.down = false;
    relay(bus).start();
    await eventually(() => bus.got.length >= 5, 5_000, 'the second relay');
  }, 30_000);
});
