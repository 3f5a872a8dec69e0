import { randomImage, RegistryTestClient, runEventScenario, scenarioProblems } from '@lading/testing';
import { drained, insertOutboxEvents, notificationsHealth, outboxOrder, outboxProgress } from '../support/events';
import { duplicatesOf, orderViolations, sharedKafkaBrokers, TopicReader, uniqueTopic } from '../support/kafka';
import { startLading, startSplit, type LadingProcess, type SplitStack } from '../support/registry-processes';

/**
 * Registry events through the split stack on PostgreSQL to the shared Kafka, on a topic of this
 * run's own (`notifications.kafka.topic`), read back with a plain kafkajs consumer: every kind of
 * event with Distribution's fields; a kill -9 of notifications mid-relay (nothing missing,
 * duplicates counted); two notifications replicas keeping each repository's order over
 * thousands of events.
 */
describe('events on Kafka, split mode', () => {
  const topic = uniqueTopic('events');
  let stack: SplitStack;
  let reader: TopicReader;
  let client: RegistryTestClient;
  let relay: LadingProcess;
  const extras: LadingProcess[] = [];

  beforeAll(async () => {
    stack = await startSplit({
      env: {
        LADING_KAFKA_BROKERS: sharedKafkaBrokers().join(','),
        LADING_NOTIFICATIONS_KAFKA_TOPIC: topic,
        LADING_NOTIFICATIONS_KAFKA_PARTITIONS: '4',
        LADING_NOTIFICATIONS_PULLS_FLUSHINTERVAL: '200ms',
        LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '100ms',
        LADING_NOTIFICATIONS_OUTBOX_LEASE: '3s',
      },
      withWorkers: false,
    });
    relay = await stack.startExtra('notifications');
    reader = await TopicReader.start(sharedKafkaBrokers(), topic);
    client = new RegistryTestClient(stack.url);
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await reader?.close();
    await Promise.all(extras.map((p) => p.stop()));
    await stack?.stop();
  });

  it('relays push, pull, mount and delete events with Distribution fields, key = repository, and reports an empty backlog', async () => {
    const expected = await runEventScenario(client, 'kev');
    const scenario = () => reader.records.filter((r) => r.key.startsWith('kev/'));
    const deadline = Date.now() + 30_000;
    while (new Set(scenario().map((r) => r.id)).size < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // nothing more should come
    expect(scenarioProblems(dedupe(scenario()).map((r) => r.event), expected)).toEqual([]);
    expect(scenario().every((r) => r.key === r.event.target.repository && r.id === r.event.id)).toBe(true);
    const health = await notificationsHealth(relay);
    expect(health.status).toBe(200);
    expect(health.body.checks.events).toMatchObject({ bus: { kind: 'kafka', state: 'up' }, backlog: { unsent: 0, oldestAgeMs: null } });
  }, 60_000);

  it('delivers every event after a kill -9 mid-relay, duplicates counted, order kept', async () => {
    await relay.stop();
    const repositories = Array.from({ length: 8 }, (_, i) => `kill/r${i}`);
    const ids = await insertOutboxEvents(stack.databaseUrl, 30_000, repositories);
    relay = await stack.startExtra('notifications');
    extras.push(relay);
    const t0 = Date.now();
    let progress = await outboxProgress(stack.databaseUrl);
    while (progress.sent < progress.total * 0.1) {
      await new Promise((r) => setTimeout(r, 20));
      progress = await outboxProgress(stack.databaseUrl);
    }
    // At a random moment of a batch: in flight, published and not yet marked, or between two.
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    await relay.kill9();
    const killedAt = await outboxProgress(stack.databaseUrl);
    expect(killedAt.sent).toBeLessThan(killedAt.total); // it was killed mid-relay

    const killedAfterMs = Date.now() - t0;
    relay = await stack.startExtra('notifications');
    extras.push(relay);
    // Throughput of one relay (default batch size), from its first mark after the leases of the killed one
    // expired to the last, by the database's marks.
    let first: { at: number; sent: number } | undefined;
    for (;;) {
      const p = await outboxProgress(stack.databaseUrl);
      if (!first && p.sent > killedAt.sent) first = { at: Date.now(), sent: p.sent };
      if (p.sent === p.total) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const rate = Math.round(((killedAt.total - first!.sent) * 1000) / Math.max(1, Date.now() - first!.at));
    await reader.waitForIds(ids, 120_000);
    const mine = reader.records.filter((r) => r.key.startsWith('kill/'));
    const dup = duplicatesOf(mine);
    console.log(
      `kill -9 after ${killedAt.sent} of ${killedAt.total} events were marked sent (${killedAfterMs} ms in); after the restart ` +
        `one relay drained the rest at ${rate} events/s; ${dup.events} events arrived more than once (${dup.copies} duplicate records, dropped by id)`,
    );
    expect(new Set(mine.map((r) => r.id))).toEqual(new Set(ids));
    expect(orderViolations(mine, pick(await outboxOrder(stack.databaseUrl), repositories))).toEqual([]);
  }, 300_000);

  it("keeps each repository's order with two notifications replicas over thousands of events and real pushes", async () => {
    // Two fresh replicas with small batches, so repositories move between them all the time.
    await relay.stop();
    const small = { LADING_NOTIFICATIONS_OUTBOX_BATCHSIZE: '50' };
    const [first, second] = [await stack.startExtra('notifications', small), await stack.startExtra('notifications', small)];
    extras.push(first, second);
    const repositories = Array.from({ length: 12 }, (_, i) => `two/r${i}`);
    const pushed = ['two/r0', 'two/real'];
    // Whichever replica polls first after an insert may drain all of it, so which one relays a
    // batch depends on their poll timers' phases. For both to take part whatever those are, each
    // first relays a round alone while the other is paused (SIGSTOP once the outbox is drained, so
    // it holds no lease; a lease it did hold would expire and be taken over), then both relay the
    // rest together.
    const alone = async (paused: LadingProcess): Promise<string[]> => {
      await drained(stack.databaseUrl);
      paused.proc.kill('SIGSTOP');
      try {
        const round = await insertOutboxEvents(stack.databaseUrl, 500, repositories);
        await drained(stack.databaseUrl);
        return round;
      } finally {
        paused.proc.kill('SIGCONT');
      }
    };
    const soloIds = [...(await alone(second)), ...(await alone(first))];
    const [ids] = await Promise.all([
      (async () => {
        const all = [...soloIds];
        for (let i = 0; i < 8; i++) all.push(...(await insertOutboxEvents(stack.databaseUrl, 500, repositories)));
        return all;
      })(),
      (async () => {
        for (let i = 0; i < 6; i++) {
          const r = await client.pushImage(pushed[i % 2], randomImage({ layers: 1, layerSize: 1024 }), `v${i}`);
          expect(r.status).toBe(201);
        }
      })(),
    ]);
    const order = pick(await outboxOrder(stack.databaseUrl), [...repositories, 'two/real']);
    const all = [...order.values()].flat();
    expect(all.length).toBe(ids.length + 6 * 3);
    await reader.waitForIds(all, 120_000);
    const mine = reader.records.filter((r) => r.key.startsWith('two/'));
    expect(orderViolations(mine, order)).toEqual([]);
    const [a, b] = await Promise.all([notificationsHealth(first), notificationsHealth(second)]);
    const relayed = [a.body.checks.events.relay.relayed, b.body.checks.events.relay.relayed];
    console.log(`two replicas relayed ${relayed.join(' and ')} events; ${duplicatesOf(mine).copies} duplicate records`);
    expect(Math.min(...relayed)).toBeGreaterThan(0);
  }, 300_000);

  it('pull events: a graceful stop of manifests writes them all; a kill -9 loses at most the last flush interval of them', async () => {
    const image = randomImage({ layers: 1 });
    expect((await client.pushImage('pulls/app', image, 'v1')).status).toBe(201);
    const pulls = () => reader.records.filter((r) => r.key === 'pulls/app' && r.event.action === 'pull').length;
    const get = async (n: number) => {
      for (let i = 0; i < n; i++) expect((await client.call('GET', '/v2/pulls/app/manifests/v1')).status).toBe(200);
    };
    const manifests = stack.apps['manifests'];
    const restart = async () => {
      const port = Number(new URL(manifests.url).port);
      const p = await startLading('manifests', { ...stack.env, LADING_SERVICES_MANIFESTS_ADDR: `127.0.0.1:${port}` }, port);
      extras.push(p);
      return p;
    };
    const settle = async (want: number) => {
      const deadline = Date.now() + 15_000;
      while (pulls() < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1_000));
    };

    await get(100);
    await manifests.stop();
    let current = await restart();
    await settle(100);
    expect(pulls()).toBe(100);

    await get(100);
    await new Promise((r) => setTimeout(r, 1_000)); // five flush intervals: written
    await get(100);
    await current.kill9();
    current = await restart();
    await settle(300);
    const arrived = pulls() - 100;
    console.log(`kill -9 of manifests right after 200 pulls: ${arrived} pull events arrived, ${200 - arrived} lost (those of the last 200 ms flush interval)`);
    expect(arrived).toBeGreaterThanOrEqual(100);
    expect(arrived).toBeLessThanOrEqual(200);
    expect(new Set(reader.records.filter((r) => r.key === 'pulls/app').map((r) => r.event.target.repository))).toEqual(new Set(['pulls/app']));
  }, 180_000);
});

/** The first record of each id, in arrival order. */
function dedupe<T extends { id: string }>(records: readonly T[]): T[] {
  const seen = new Set<string>();
  return records.filter((r) => !seen.has(r.id) && seen.add(r.id));
}

function pick<V>(m: Map<string, V>, keys: readonly string[]): Map<string, V> {
  return new Map(keys.filter((k) => m.has(k)).map((k) => [k, m.get(k)!]));
}
