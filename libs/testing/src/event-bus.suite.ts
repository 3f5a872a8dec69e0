import { eventually } from './eventually';
import { randomUUID } from 'node:crypto';
import type { RegistryEvent } from '@lading/contracts';
import type { BusEvent, DeliveredEvent, EventBus } from '@lading/events';

/** A bus for one test, on its own topic (Kafka) so tests never see each other's events. */
export interface EventBusFixture {
  bus: EventBus;
  /** Closes the bus and removes what the test made. */
  cleanup(): Promise<void>;
}

/** A registry event of `repository`, numbered `n` (in `target.tag`) so tests can check order. */
export function testBusEvent(repository: string, n: number, traceparent: string | null = null): BusEvent {
  const id = randomUUID();
  const event: RegistryEvent = {
    id,
    timestamp: new Date().toISOString(),
    action: 'push',
    target: { mediaType: 'application/octet-stream', size: n, digest: `sha256:${'0'.repeat(64)}`, length: n, repository, tag: `n${n}` },
    request: { id: randomUUID(), method: 'PUT' },
    actor: {},
    source: { instanceID: 'suite' },
  };
  return { id, repository, envelopeVersion: 1, traceparent, event };
}


/**
 * The contract every event bus adapter keeps (libs/events `EventBus`): delivery of what was
 * published to each subscription group, with id, repository, envelope and traceparent intact;
 * each repository's order across batches; at least once when a handler rejects (the publisher
 * publishes again when `publish` rejected, as the relay does); health `up` once connected, and
 * a subscription's `up` until closed.
 */
export function describeEventBus(name: string, make: () => Promise<EventBusFixture>, timeoutMs = 30_000): void {
  describe(`event bus contract: ${name}`, () => {
    let fx: EventBusFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx?.cleanup();
    });

    /** Publishes as the relay does: again, until `publish` resolves. */
    async function publish(events: BusEvent[]): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fx.bus.publish(events);
        } catch (e) {
          if (attempt >= 5) throw e;
        }
      }
    }

    it('reports up once connected, and takes an empty publish', async () => {
      await fx.bus.connect();
      expect(fx.bus.health().state).toBe('up');
      await fx.bus.publish([]);
    }, timeoutMs);

    it('delivers each event with its id, repository, envelope and traceparent', async () => {
      const got: DeliveredEvent[] = [];
      const sub = await fx.bus.subscribe(`g-${randomUUID()}`, async (e) => void got.push(e));
      expect(sub.health().state).toBe('up');
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const sent = [testBusEvent('suite/a', 1, traceparent), testBusEvent('suite/b', 1)];
      await publish(sent);
      // At least once: a consumer group may hand an event over again (a rebalance before a commit).
      await eventually(() => new Set(got.map((e) => e.id)).size >= 2, timeoutMs, 'two events');
      await sub.close();
      expect(sub.health().state).toBe('down');
      expect([...new Set(got.map((e) => e.id))].sort()).toEqual(sent.map((e) => e.id).sort());
      const a = got.find((e) => e.repository === 'suite/a')!;
      expect(a).toEqual({ ...sent[0] });
      expect(got.find((e) => e.repository === 'suite/b')!.traceparent).toBeNull();
    }, timeoutMs);

    it("keeps each repository's order across batches, and every group gets everything", async () => {
      const groups = [`g-${randomUUID()}`, `g-${randomUUID()}`];
      const got: Record<string, DeliveredEvent[]> = { [groups[0]]: [], [groups[1]]: [] };
      const subs = await Promise.all(groups.map((g) => fx.bus.subscribe(g, async (e) => void got[g].push(e))));
      const repos = ['suite/a', 'suite/b', 'suite/c', 'suite/d'];
      const sent: BusEvent[] = [];
      for (let batch = 0; batch < 8; batch++) {
        const events = Array.from({ length: 15 }, (_, i) => testBusEvent(repos[(batch + i) % repos.length], batch * 15 + i));
        sent.push(...events);
        await publish(events);
      }
      await eventually(() => groups.every((g) => new Set(got[g].map((e) => e.id)).size >= sent.length), timeoutMs, 'every event in both groups');
      await Promise.all(subs.map((s) => s.close()));
      for (const g of groups) {
        for (const repo of repos) {
          const order = (list: { repository: string; id: string }[]) => [...new Set(list.filter((e) => e.repository === repo).map((e) => e.id))];
          expect(order(got[g])).toEqual(order(sent));
        }
      }
    }, timeoutMs * 2);

    it('delivers an event again when its handler rejected', async () => {
      const seen: string[] = [];
      let failed = false;
      const sent = [testBusEvent('suite/a', 1), testBusEvent('suite/a', 2)];
      const sub = await fx.bus.subscribe(`g-${randomUUID()}`, async (e) => {
        seen.push(e.id);
        if (e.id === sent[0].id && !failed) {
          failed = true;
          throw new Error('not now');
        }
      });
      await publish(sent);
      await eventually(() => seen.filter((id) => id === sent[0].id).length >= 2 && seen.includes(sent[1].id), timeoutMs, 'a redelivery');
      await sub.close();
      // The second event is never taken before the first was taken once.
      const firstTaken = seen.lastIndexOf(sent[0].id, seen.indexOf(sent[1].id));
      expect(firstTaken).toBeGreaterThan(0);
    }, timeoutMs);
  });
}
