import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { stringify } from 'yaml';
import type { RegistryEvent } from '@lading/contracts';
import type { EventBus } from '@lading/events';
import { adminToken, EVENT_BUS, loadConfig } from '@lading/nest-common';
import { eventually, randomImage, RegistryTestClient, runEventScenario, scenarioProblems } from '@lading/testing';
import { startTestRegistry, type TestRegistry } from './embedded.harness';
import { eventsCommand } from './events.command';

jest.setTimeout(90_000);

/** Fast pull flushes and polls, so the tests wait little. */
const ENV = { LADING_NOTIFICATIONS_PULLS_FLUSHINTERVAL: '50ms', LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '50ms' };

/** Subscribes `handler` to the registry's in-process bus before anything starts. */
const subscribing = (handler: (e: RegistryEvent) => Promise<void>) => async (app: INestApplication) => {
  await app.get<EventBus>(EVENT_BUS).subscribe('test', async (d) => handler(d.event));
};

describe('embedded registry: events on the in-process bus', () => {
  it('delivers push, pull, mount and delete events with the fields Distribution sends', async () => {
    const got: RegistryEvent[] = [];
    const reg = await startTestRegistry(ENV, undefined, subscribing(async (e) => void got.push(e)));
    const c = new RegistryTestClient(reg.url);
    try {
      const expected = await runEventScenario(c, 'ev');
      await eventually(() => got.length >= expected.length, 30_000, `${expected.length} events`);
      await new Promise((r) => setTimeout(r, 300)); // no more should come
      expect(scenarioProblems(got, expected)).toEqual([]);
      expect(got.every((e) => e.source.instanceID && e.request.id)).toBe(true);
      const ready = (await c.call('GET', '/healthz/ready')).json();
      expect(ready.checks.events).toMatchObject({ bus: { kind: 'in-process', state: 'up' }, backlog: { unsent: 0, oldestAgeMs: null } });
      expect(ready.checks.pullEvents).toMatchObject({ recorded: 2, written: 2, dropped: 0, pending: 0 });
    } finally {
      await c.close();
      await reg.close();
    }
  });

  it('keeps events a subscriber did not take across a restart, and delivers them then', async () => {
    const refused: string[] = [];
    const first = await startTestRegistry(
      ENV,
      undefined,
      subscribing(async (e) => {
        refused.push(e.id);
        throw new Error('not taking events now');
      }),
    );
    let reg: TestRegistry | undefined;
    const c = new RegistryTestClient(first.url);
    try {
      expect((await c.pushImage('restart/app', randomImage({ layers: 1 }), 'v1')).status).toBe(201);
      await eventually(() => refused.length > 0, 30_000, 'a delivery attempt');
      const waiting = (await c.call('GET', '/healthz/ready')).json().checks.events.backlog.unsent;
      expect(waiting).toBe(3);
      await c.close();
      await first.close(true);

      const got: RegistryEvent[] = [];
      reg = await startTestRegistry(ENV, first.dataDir, subscribing(async (e) => void got.push(e)));
      await eventually(() => got.length >= 3, 30_000, 'the kept events');
      expect(got.map((e) => `${e.action} ${e.target.repository} ${e.target.tag ?? ''}`)).toEqual([
        'push restart/app ',
        'push restart/app ',
        'push restart/app v1',
      ]);
      // The first refused one was the first event of the kept batch, delivered again.
      expect(got[0].id).toBe(refused[0]);
    } finally {
      await c.close().catch(() => undefined);
      await reg?.close();
    }
  });
});

describe('embedded registry: the webhook admin API and `lading events`', () => {
  const secret = 'an-embedded-admin-secret-0123456789';
  let dir: string;
  let reg: TestRegistry;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lading-events-admin-'));
    const config = join(dir, 'lading.yml');
    // An endpoint nothing listens on: this is about the admin API, not delivery.
    writeFileSync(config, stringify({ notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: 'ci', url: 'http://127.0.0.1:9/hook' }] } }));
    reg = await startTestRegistry({ ...ENV, LADING_CONFIG: config, LADING_HTTP_SECRET: secret });
  });
  afterAll(async () => {
    await reg?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers on the registry port with the admin token, and 401 without it', async () => {
    const url = `${reg.url}/admin/webhooks/endpoints`;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: { authorization: `Bearer ${adminToken(secret)}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { endpoints: unknown[] }).endpoints).toEqual([expect.objectContaining({ name: 'ci', url: 'http://127.0.0.1:9/hook' })]);
  });

  it('is what `lading events` talks to by default (http.addr), pausing and resuming an endpoint', async () => {
    const config = loadConfig({ LADING_HTTP_ADDR: new URL(reg.url).host, LADING_HTTP_SECRET: secret });
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      expect(await eventsCommand(['pause', 'ci'], config)).toBe(true);
      expect(await eventsCommand(['endpoints'], config)).toBe(true);
      expect(await eventsCommand(['resume', 'ci'], config)).toBe(true);
    } finally {
      log.mockRestore();
    }
    expect(process.exitCode ?? 0).toBe(0);
    expect(JSON.parse(printed[1]).endpoints).toEqual([expect.objectContaining({ name: 'ci', paused: true })]);
  });
});
