import { Logger } from '@nestjs/common';
import { InProcessEventBus, type EventBus, type EventHandler, type EventSubscription, type HealthState } from '@lading/events';
import type { MetadataDb } from '@lading/metadata-db';
import { HealthChecks } from '@lading/nest-common';
import { eventually, testBusEvent } from '@lading/testing';
import { webhookGroup, WebhookConsumer } from './webhook.consumer';
import type { WebhookSender } from './webhook.sender';
import type { DeliverableEvent, WebhookDispatcher, WebhookEndpoint } from './webhook.service';

/** The in-process bus, with a say over each subscription's health and the order of what happens. */
class ScriptedBus extends InProcessEventBus {
  readonly groups: string[] = [];
  readonly states: Record<string, HealthState['state']> = {};
  refuse?: string;
  constructor(private readonly trail: string[]) {
    super();
  }
  override async subscribe(group: string, handler: EventHandler): Promise<EventSubscription> {
    if (group === this.refuse) throw new Error(`cannot join ${group}`);
    this.groups.push(group);
    const sub = await super.subscribe(group, handler);
    this.states[group] = 'up';
    return {
      health: () => ({ ...sub.health(), state: this.states[group] }),
      close: async () => {
        this.trail.push(`close ${group}`);
        await sub.close();
      },
    };
  }
}

function fixture(endpoints: Pick<WebhookEndpoint, 'name' | 'disabled'>[], readinessFollowsBus = true) {
  const trail: string[] = [];
  const bus = new ScriptedBus(trail);
  const accepted: [string, string][] = [];
  const dispatcher = {
    endpoints,
    acceptFor: async (name: string, events: readonly DeliverableEvent[]) => void accepted.push(...events.map((e) => [name, e.id] as [string, string])),
    start: () => void trail.push('dispatcher start'),
    stop: async () => void trail.push('dispatcher stop'),
  } as unknown as WebhookDispatcher;
  const sender = { close: async () => void trail.push('sender close') } as unknown as WebhookSender;
  const db = {
    read: { webhooks: { endpointStates: async (names: string[]) => names.map((name) => ({ name, pending: 0, delivered: 0, dead: 0 })) } },
  } as unknown as MetadataDb;
  const health = new HealthChecks();
  const consumer = new WebhookConsumer(bus as EventBus, dispatcher, sender, health, db, { readinessFollowsBus, resubscribeAfterMs: 10 });
  return { bus, consumer, health, accepted, trail };
}

/** Publishes one event and expects exactly `endpoints` to have taken it. */
async function expectEachEndpointTakes(bus: ScriptedBus, accepted: [string, string][], endpoints: string[]): Promise<void> {
  const e = testBusEvent('x/app', 1);
  await bus.publish([e]);
  expect(accepted.sort()).toEqual(endpoints.map((name) => [name, e.id]));
}

describe('WebhookConsumer', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it("subscribes one group per enabled endpoint, each feeding only its endpoint's intake", async () => {
    const { bus, consumer, accepted } = fixture([
      { name: 'a', disabled: false },
      { name: 'off', disabled: true },
      { name: 'b', disabled: false },
    ]);
    await consumer.onModuleInit();
    expect(bus.groups.sort()).toEqual([webhookGroup('a'), webhookGroup('b')]);
    await expectEachEndpointTakes(bus, accepted, ['a', 'b']);
    await consumer.onApplicationShutdown();
  });

  it('reports each endpoint with its consumer; not ready once a consumer is down, unless readiness does not follow the bus', async () => {
    for (const follows of [true, false]) {
      const { bus, consumer, health } = fixture([{ name: 'a', disabled: false }], follows);
      await consumer.onModuleInit();
      const up = await health.run('ready');
      expect(up.ok).toBe(true);
      expect(up.checks.webhooks).toEqual({ endpoints: [expect.objectContaining({ name: 'a', pending: 0, consumer: expect.objectContaining({ state: 'up' }) })] });
      bus.states[webhookGroup('a')] = 'connecting';
      expect((await health.run('ready')).ok).toBe(true);
      bus.states[webhookGroup('a')] = 'down';
      expect((await health.run('ready')).ok).toBe(!follows);
      await consumer.onApplicationShutdown();
    }
  });

  it('closes every subscription before the dispatcher stops, and the sender last', async () => {
    const { consumer, trail } = fixture([
      { name: 'a', disabled: false },
      { name: 'b', disabled: false },
    ]);
    await consumer.onModuleInit();
    await consumer.onApplicationShutdown();
    expect(trail.slice(1, 3).sort()).toEqual([`close ${webhookGroup('a')}`, `close ${webhookGroup('b')}`]);
    expect(trail).toEqual(['dispatcher start', expect.any(String), expect.any(String), 'dispatcher stop', 'sender close']);
  });

  it('starts without a consumer that cannot subscribe yet, reports it down, and subscribes it once it can', async () => {
    const { bus, consumer, health, accepted, trail } = fixture([
      { name: 'a', disabled: false },
      { name: 'b', disabled: false },
    ]);
    bus.refuse = webhookGroup('b');
    await consumer.onModuleInit();
    expect(trail).toEqual(['dispatcher start']);
    const down = await health.run('ready');
    expect(down.ok).toBe(false);
    expect(down.checks.webhooks).toEqual({
      endpoints: [
        expect.objectContaining({ name: 'a', consumer: expect.objectContaining({ state: 'up' }) }),
        expect.objectContaining({ name: 'b', consumer: expect.objectContaining({ state: 'down', detail: `cannot join ${webhookGroup('b')}` }) }),
      ],
    });
    bus.refuse = undefined;
    await eventually(() => bus.groups.includes(webhookGroup('b')), 5_000, 'the second attempt');
    expect((await health.run('ready')).ok).toBe(true);
    await expectEachEndpointTakes(bus, accepted, ['a', 'b']);
    await consumer.onApplicationShutdown();
  });

  it('stops trying to subscribe once shut down', async () => {
    const { bus, consumer } = fixture([{ name: 'a', disabled: false }]);
    bus.refuse = webhookGroup('a');
    let attempts = 0;
    const subscribe = bus.subscribe.bind(bus);
    bus.subscribe = (group, handler) => (attempts++, subscribe(group, handler));
    await consumer.onModuleInit();
    await eventually(() => attempts >= 2, 5_000, 'a retry');
    await consumer.onApplicationShutdown();
    const after = attempts;
    bus.refuse = undefined;
    await new Promise((r) => setTimeout(r, 100));
    expect(attempts).toBe(after);
    expect(bus.groups).toEqual([]);
  });
});
