import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { eventually, randomImage, RegistryTestClient } from '@lading/testing';
import { notificationsHealth, outboxOrder } from '../support/events';
import { orderViolations, startPrivateKafka, TopicReader, uniqueTopic, type PrivateKafka } from '../support/kafka';
import { startSplit, type LadingProcess, type SplitStack } from '../support/registry-processes';
import { WebhookReceiver } from '../support/webhook-receiver';

/** How long the broker stays down while pushes go on. */
const OUTAGE_MS = 25_000;

/**
 * Invariant 3 with Kafka down: a broker of the test's own (never the shared one) is stopped for
 * 25 s while pushes run through the split stack. Every push succeeds, notifications' readiness
 * reports the broker down and the backlog growing (503, liveness still 200), and once the broker
 * is back every event of every push arrives, each repository in order, and readiness is 200.
 * A second notifications process with a webhook endpoint, started while the broker is down,
 * comes up all the same (its consumer subscribes in the background, readiness says it is down)
 * and delivers every event to the endpoint once the broker is back.
 */
describe('events while Kafka is down, split mode', () => {
  const topic = uniqueTopic('outage');
  let kafka: PrivateKafka;
  let stack: SplitStack;
  let relay: LadingProcess;
  let client: RegistryTestClient;
  const receiver = new WebhookReceiver();
  let configDir: string;

  beforeAll(async () => {
    await receiver.start();
    configDir = mkdtempSync(join(tmpdir(), 'lading-outage-'));
    kafka = await startPrivateKafka();
    stack = await startSplit({
      env: {
        LADING_KAFKA_BROKERS: kafka.brokers.join(','),
        LADING_NOTIFICATIONS_KAFKA_TOPIC: topic,
        LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '100ms',
      },
      withWorkers: false,
    });
    relay = await stack.startExtra('notifications');
    client = new RegistryTestClient(stack.url);
  }, 240_000);

  afterAll(async () => {
    await client?.close();
    await relay?.stop();
    await stack?.stop();
    await kafka?.destroy();
    await receiver.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it('takes every push while the broker is down and delivers every event once it is back', async () => {
    expect((await client.pushImage('down/before', randomImage({ layers: 1 }), 'v1')).status).toBe(201);
    await kafka.stop();
    const downAt = Date.now();
    let pushes = 0;
    let sawDown: { status: number; body: any } | undefined;
    while (Date.now() - downAt < OUTAGE_MS) {
      const r = await client.pushImage(`down/r${pushes % 3}`, randomImage({ layers: 2, layerSize: 1024 }), `v${pushes}`);
      expect(r.status).toBe(201);
      pushes++;
      const health = await notificationsHealth(relay);
      if (health.status === 503 && health.body.checks.events.bus.state === 'down' && health.body.checks.events.backlog.unsent > 0) sawDown = health;
    }
    expect(sawDown).toBeDefined();
    expect(sawDown!.body.status).toBe('unavailable');
    expect(sawDown!.body.checks.events.backlog.oldestAgeMs).toBeGreaterThan(0);
    expect(sawDown!.body.checks.events.bus.detail).toContain(kafka.brokers[0]);
    expect((await fetch(`${relay.url}/healthz/live`)).status).toBe(200);

    // A webhook-delivering notifications process started now, with no broker to join.
    const config = join(configDir, 'lading.yml');
    writeFileSync(config, stringify({ notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: 'hook', url: receiver.url, backoff: '50ms' }] } }));
    const delivering = await stack.startExtra('notifications', { LADING_CONFIG: config }, 'live');
    const starting = await notificationsHealth(delivering);
    expect(starting.status).toBe(503);
    expect(starting.body.checks.webhooks.endpoints).toEqual([expect.objectContaining({ name: 'hook', consumer: expect.objectContaining({ state: 'down' }) })]);
    console.log(`broker down ${OUTAGE_MS} ms: ${pushes} pushes (${pushes * 4} events) all 201; readiness said ${JSON.stringify(sawDown!.body.checks.events.backlog)}`);

    await kafka.start();
    const backAt = Date.now();
    const order = await outboxOrder(stack.databaseUrl);
    const ids = [...order.values()].flat();
    expect(ids.length).toBe(3 + pushes * 4); // config + layer + manifest, then config + 2 layers + manifest each
    const reader = await TopicReader.start(kafka.brokers, topic);
    try {
      await reader.waitForIds(ids, 120_000);
      console.log(`every event arrived ${Date.now() - backAt} ms after the broker was back`);
      expect(orderViolations(reader.records, order)).toEqual([]);
      const deadline = Date.now() + 30_000;
      let health = await notificationsHealth(relay);
      while ((health.status !== 200 || health.body.checks.events.backlog.unsent !== 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        health = await notificationsHealth(relay);
      }
      expect(health.status).toBe(200);
      expect(health.body.checks.events).toMatchObject({ bus: { state: 'up' }, backlog: { unsent: 0, oldestAgeMs: null } });
      await eventually(() => ids.every((id) => receiver.ids().includes(id)), 120_000, 'every event at the webhook');
      await eventually(async () => (await notificationsHealth(delivering)).status === 200, 60_000, 'the delivering process to be ready');
    } finally {
      await reader.close();
    }
  }, 300_000);
});
