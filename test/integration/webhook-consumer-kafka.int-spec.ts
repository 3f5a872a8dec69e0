import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { stringify } from 'yaml';
import { REGISTRY_EVENT_HEADERS } from '@lading/contracts';
import { KafkaEventBus, type BusEvent } from '@lading/events';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { HealthChecks } from '@lading/nest-common';
import { eventually, testBusEvent } from '@lading/testing';
import { WebhookAddressGuard, WebhookConsumer, WebhookDispatcher, webhookGroup, WebhookSender, type WebhookEndpoint } from '@lading/app-notifications';
import { sharedKafkaBrokers, uniqueTopic } from '../support/kafka';
import { planSplit, startLading, type LadingProcess } from '../support/registry-processes';
import { testEndpoint, WebhookReceiver as Receiver } from '../support/webhook-receiver';

/** An endpoint of this run only: its consumer group is new on the shared broker. */
function endpoint(what: string, url: string): WebhookEndpoint {
  return testEndpoint(`${what}-${randomBytes(4).toString('hex')}`, url, { maxattempts: 5 });
}

/** `n` events round-robin over `repositories`. */
function busEvents(n: number, repositories: readonly string[]): BusEvent[] {
  return Array.from({ length: n }, (_, i) => testBusEvent(repositories[i % repositories.length], i));
}

/** Per repository, the ids in the order they first appear. */
function firstSeenOrder(events: readonly { id: string; target: { repository: string } }[]): Map<string, string[]> {
  const order = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    order.set(e.target.repository, [...(order.get(e.target.repository) ?? []), e.id]);
  }
  return order;
}

/** A promise and the function that settles it: to hold a handler until the test lets it go. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * The webhook consumer on the shared Kafka (`@nestjs/microservices`' Kafka transport, one consumer
 * group per endpoint) feeding real dispatchers on PostgreSQL and real receivers: an event whose
 * intake failed comes again; a consumer closed mid-stream, or its process killed, loses nothing;
 * a stalled endpoint's group holds up no other; records that are no events are skipped.
 */
describe('webhook consumer on Kafka', () => {
  const brokers = sharedKafkaBrokers();
  const guard = new WebhookAddressGuard(['127.0.0.1']);
  const kafka = new Kafka({ clientId: 'lading-test', brokers, logLevel: logLevel.NOTHING });
  let admin: Admin;
  let plan: Awaited<ReturnType<typeof planSplit>>;
  let db: MetadataDb;
  const topics: string[] = [];
  const groups: string[] = [];
  const buses: KafkaEventBus[] = [];
  const consumers: WebhookConsumer[] = [];
  const receivers: Receiver[] = [];
  const processes: LadingProcess[] = [];

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    admin = kafka.admin();
    await admin.connect();
    plan = await planSplit();
    db = new MetadataDb(await openMetadataDb({ url: plan.db.url, poolSize: 6 }));
  }, 60_000);
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    await Promise.all(consumers.splice(0).map((c) => c.onApplicationShutdown()));
    await Promise.all(buses.splice(0).map((b) => b.close()));
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
  }, 60_000);
  afterAll(async () => {
    await admin?.deleteGroups(groups).catch(() => undefined);
    await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await db?.close();
    await plan?.db.drop();
    if (plan) rmSync(plan.dataDir, { recursive: true, force: true });
  }, 60_000);

  /** A bus on a new topic, its warnings kept in `warnings`. */
  function busOn(partitions: number): { bus: KafkaEventBus; topic: string; warnings: string[] } {
    const topic = uniqueTopic('hooks');
    topics.push(topic);
    const warnings: string[] = [];
    const bus = new KafkaEventBus({
      brokers,
      clientId: 'lading-test',
      topic,
      partitions,
      logger: { log: () => undefined, warn: (m) => void warnings.push(m), debug: () => undefined },
    });
    buses.push(bus);
    return { bus, topic, warnings };
  }

  async function receiver(): Promise<Receiver> {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  }

  /** The notifications app's webhook consumer over `bus`, started as Nest starts it; `intake` may wrap the dispatcher's. */
  async function consume(
    bus: KafkaEventBus,
    endpoints: WebhookEndpoint[],
    intake?: (take: WebhookDispatcher['acceptFor']) => WebhookDispatcher['acceptFor'],
  ): Promise<{ consumer: WebhookConsumer; health: HealthChecks }> {
    groups.push(...endpoints.map((e) => webhookGroup(e.name)));
    const sender = new WebhookSender(guard);
    const dispatcher = new WebhookDispatcher(db, endpoints, sender, { pollMs: 20, batchSize: 50 });
    if (intake) dispatcher.acceptFor = intake(dispatcher.acceptFor.bind(dispatcher));
    const health = new HealthChecks();
    const consumer = new WebhookConsumer(bus, dispatcher, sender, health, db, { readinessFollowsBus: true });
    await consumer.onModuleInit();
    consumers.push(consumer);
    return { consumer, health };
  }

  async function rows(name: string): Promise<number> {
    const [s] = await db.read.webhooks.endpointStates([name]);
    return s.pending + s.delivered + s.dead;
  }

  /** Whether the committed offsets of `group` on `topic` have reached the end of every partition that has records. */
  async function caughtUp(group: string, topic: string): Promise<boolean> {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return ends.every((end) => end.high === end.low || committed.partitions.find((p) => p.partition === end.partition)?.offset === end.high);
  }

  it('takes again an event whose intake failed (a TypeError, on which kafkajs alone gives up for good), in order, and delivers it', async () => {
    const { bus, topic } = busOn(3);
    const hook = await receiver();
    const ep = endpoint('retried', hook.url);
    const attempts: string[] = [];
    let failed = false;
    const { health } = await consume(bus, [ep], (take) => async (name, events) => {
      attempts.push(events[0].id);
      if (!failed) {
        failed = true;
        throw new TypeError("Cannot read properties of undefined (reading 'query')");
      }
      return take(name, events);
    });
    const sent = busEvents(12, ['retry/app']);
    await bus.publish(sent);

    await eventually(() => new Set(hook.ids()).size === sent.length, 60_000, 'every event at the receiver');
    expect([...new Set(hook.ids())]).toEqual(sent.map((e) => e.id));
    // The failed intake was the first event; it came again before any later one was taken.
    expect(attempts.slice(0, 2)).toEqual([sent[0].id, sent[0].id]);
    expect(new Set(attempts.slice(2)).has(sent[0].id)).toBe(false);
    const ready = await health.run('ready');
    expect(ready.ok).toBe(true);
    expect(ready.checks.webhooks).toEqual({ endpoints: [expect.objectContaining({ name: ep.name, consumer: expect.objectContaining({ state: 'up' }) })] });
    await eventually(() => caughtUp(webhookGroup(ep.name), topic), 30_000, 'the offsets committed');
  }, 120_000);

  it('loses nothing when a consumer is closed mid-stream: the next one of the group takes up from the committed offset', async () => {
    const { bus } = busOn(3);
    const hook = await receiver();
    const ep = endpoint('closed', hook.url);
    const repositories = Array.from({ length: 6 }, (_, i) => `close/r${i}`);
    const sent = busEvents(600, repositories);
    await bus.publish(sent);
    let taken = 0;
    const held = gate();
    const reached = gate();
    const { consumer } = await consume(bus, [ep], (take) => async (name, events) => {
      if (++taken === 200) {
        reached.open();
        await held.wait; // mid-stream: this record is in hand when the consumer closes
      }
      return take(name, events);
    });
    await reached.wait;
    const closing = consumer.onApplicationShutdown();
    held.open(); // the close waits for the record in hand
    await closing;
    consumers.splice(consumers.indexOf(consumer), 1);
    const afterClose = await rows(ep.name);
    expect(afterClose).toBeGreaterThanOrEqual(200);
    expect(afterClose).toBeLessThan(sent.length);

    await consume(bus, [ep]);
    await eventually(() => new Set(hook.ids()).size === sent.length, 60_000, 'every event at the receiver');
    expect(await rows(ep.name)).toBe(sent.length);
    expect(firstSeenOrder(hook.events())).toEqual(firstSeenOrder(sent.map((e) => e.event)));
  }, 120_000);

  it('loses nothing when the notifications process is killed mid-stream (kill -9: offsets uncommitted, taken again on restart)', async () => {
    const { bus, topic } = busOn(3);
    const hook = await receiver();
    const ep = endpoint('killed', hook.url);
    groups.push(webhookGroup(ep.name));
    // Paused: deliveries wait, so what is checked is the intake from Kafka (a kill leaves no claimed POST behind).
    await db.read.webhooks.setPaused(ep.name, true);
    const repositories = Array.from({ length: 8 }, (_, i) => `kill/r${i}`);
    const sent = busEvents(4000, repositories);
    for (let i = 0; i < sent.length; i += 500) await bus.publish(sent.slice(i, i + 500));

    const app = plan.apps.find((a) => a.app === 'notifications')!;
    const config = join(plan.dataDir, `${ep.name}.yml`);
    writeFileSync(config, stringify({ notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: ep.name, url: hook.url, backoff: '50ms', maxbackoff: '200ms' }] } }));
    const env = { ...app.env, LADING_CONFIG: config, LADING_KAFKA_BROKERS: brokers.join(','), LADING_NOTIFICATIONS_KAFKA_TOPIC: topic };
    const first = await startLading('notifications', env, app.port);
    processes.push(first);
    const ready = (await (await fetch(`${first.url}/healthz/ready`)).json()) as { checks: { webhooks: { endpoints: unknown[] } } };
    expect(ready.checks.webhooks.endpoints).toEqual([expect.objectContaining({ name: ep.name, consumer: expect.objectContaining({ state: 'up' }) })]);
    await eventually(async () => (await rows(ep.name)) >= 400, 60_000, 'the intake under way');
    await first.kill9();
    const atKill = await rows(ep.name);
    expect(atKill).toBeLessThan(sent.length); // killed mid-stream

    processes.push(await startLading('notifications', env, app.port));
    await eventually(async () => (await rows(ep.name)) === sent.length, 60_000, 'every event taken after the restart');
    await db.read.webhooks.setPaused(ep.name, false);
    await eventually(() => new Set(hook.ids()).size === sent.length, 60_000, 'every event at the receiver');
    expect(firstSeenOrder(hook.events())).toEqual(firstSeenOrder(sent.map((e) => e.event)));
  }, 240_000);

  it("gives each endpoint its own consumer group: one whose intake is stuck holds up no other, and catches up once free", async () => {
    const { bus, topic } = busOn(3);
    const [fast, slow] = [await receiver(), await receiver()];
    const [quick, stuck] = [endpoint('quick', fast.url), endpoint('stuck', slow.url)];
    const released = gate();
    await consume(bus, [quick, stuck], (take) => async (name, events) => {
      if (name === stuck.name) await released.wait;
      return take(name, events);
    });
    const sent = busEvents(150, ['groups/a', 'groups/b', 'groups/c']);
    try {
      await bus.publish(sent);
      await eventually(() => new Set(fast.ids()).size === sent.length, 60_000, 'every event at the quick endpoint');
      await eventually(() => caughtUp(webhookGroup(quick.name), topic), 30_000, "the quick group's offsets at the end");
      expect(slow.posts).toHaveLength(0);
      expect(await rows(stuck.name)).toBe(0);
      expect(await caughtUp(webhookGroup(stuck.name), topic)).toBe(false);
    } finally {
      released.open(); // else closing the consumer waits for the stuck intake
    }
    await eventually(() => new Set(slow.ids()).size === sent.length, 60_000, 'every event at the stuck endpoint, once free');
    expect(firstSeenOrder(slow.events())).toEqual(firstSeenOrder(sent.map((e) => e.event)));
  }, 120_000);

  it('skips records that are no events (logged with their offset), and goes on with the next', async () => {
    const { bus, topic, warnings } = busOn(1);
    const hook = await receiver();
    const ep = endpoint('garbage', hook.url);
    const { health } = await consume(bus, [ep]);
    const producer = kafka.producer();
    await producer.connect();
    const [a, b, c] = busEvents(3, ['junk/app']);
    const foreign = testBusEvent('junk/app', 9);
    const junk = [
      { key: 'junk/app', value: 'not json at all' },
      { key: 'junk/app', value: null },
      { key: 'junk/app', value: Buffer.from([0, 1, 2, 3]) },
      { key: 'junk/app', value: '[1,2]' },
      { key: 'junk/app', value: JSON.stringify({ ...a.event, id: 'not-a-uuid' }) },
      { key: 'junk/app', value: JSON.stringify({ ...a.event, target: 'nowhere' }) },
      { key: 'junk/app', value: JSON.stringify(foreign.event), headers: { [REGISTRY_EVENT_HEADERS.id]: a.id } },
      // Decodes, but PostgreSQL refuses it: without the check, its intake fails on every attempt.
      { key: 'junk/app', value: JSON.stringify({ ...foreign.event, actor: { name: 'nul\u0000' } }) },
    ];
    try {
      await bus.publish([a]);
      await producer.send({ topic, messages: junk.slice(0, 4) });
      await bus.publish([b]);
      await producer.send({ topic, messages: junk.slice(4) });
      await bus.publish([c]);
    } finally {
      await producer.disconnect();
    }

    await eventually(() => new Set(hook.ids()).size === 3, 60_000, 'the three events at the receiver');
    expect(hook.ids()).toEqual([a.id, b.id, c.id]);
    const skipped = warnings.filter((w) => w.includes('skipped the record'));
    expect(skipped).toHaveLength(junk.length);
    expect(skipped[0]).toMatch(new RegExp(`${topic.replace(/\./g, '\\.')}\\[0\\] offset 1: the value is not JSON`));
    expect(skipped.slice(1).map((w) => w.replace(/.*offset \d+: /, ''))).toEqual([
      'the record has no value',
      expect.stringContaining('the value is not JSON'),
      'the value is not an event envelope',
      'the envelope has no uuid id',
      'the envelope has no target repository',
      `the id header ${a.id} is not the envelope's id ${foreign.id}`,
      expect.stringContaining('holds a NUL character'),
    ]);
    expect(warnings.filter((w) => w.includes('crashed'))).toEqual([]);
    expect((await health.run('ready')).ok).toBe(true);
    await eventually(() => caughtUp(webhookGroup(ep.name), topic), 30_000, 'the offsets committed past the junk');
  }, 120_000);
});
