import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { RegistryEvent } from '@lading/contracts';
import { eventually, RegistryTestClient, runEventScenario, scenarioProblems } from '@lading/testing';
import { startSplitOnKafka } from '../support/kafka';
import type { LadingProcess, SplitStack } from '../support/registry-processes';
import { WebhookReceiver as Receiver } from '../support/webhook-receiver';
import { verifyWebhook } from '@lading/app-notifications';

const LADING = resolve(__dirname, '../../scripts/lading.js');

/**
 * Webhooks through the whole split stack: pushes, pulls, mounts and deletes become events in the
 * outbox, the relay sends them to Kafka, notifications consumes the topic once per endpoint and
 * POSTs them: signed, with Distribution's fields, to a healthy endpoint; to a flaky one after its
 * failures; to a dead one never, until an operator redelivers its dead letters with `lading events`.
 */
describe('webhooks through the split stack on Kafka', () => {
  const secret = 'webhook-signing-secret-0123456789';
  const receivers = { healthy: new Receiver(), flaky: new Receiver(), dead: new Receiver() };
  let dir: string;
  let stack: SplitStack;
  let notifications: LadingProcess;
  let client: RegistryTestClient;

  beforeAll(async () => {
    await Promise.all(Object.values(receivers).map((r) => r.start()));
    receivers.flaky.answerWith((n) => (n <= 2 ? 500 : 200));
    receivers.dead.answerWith(() => 503);
    dir = mkdtempSync(join(tmpdir(), 'lading-webhooks-'));
    const config = join(dir, 'lading.yml');
    // The receivers answer from this process, which `lading events` (spawnSync) blocks for a second or two:
    // a 2 s timeout made a 503 a timeout now and then.
    const endpoint = (name: string, extra: object) => ({ name, url: receivers[name as keyof typeof receivers].url, timeout: '10s', backoff: '50ms', maxbackoff: '200ms', ...extra });
    writeFileSync(
      config,
      stringify({
        notifications: {
          allowedhosts: ['127.0.0.1'],
          endpoints: [
            endpoint('healthy', { secret, headers: { Authorization: ['Bearer for-the-receiver'] } }),
            endpoint('flaky', { threshold: 100 }),
            endpoint('dead', { maxattempts: 2, ignore: { actions: ['pull'] } }),
          ],
        },
      }),
    );
    ({ stack, notifications } = await startSplitOnKafka('webhooks', { LADING_CONFIG: config, LADING_NOTIFICATIONS_KAFKA_PARTITIONS: '2' }));
    client = new RegistryTestClient(stack.url);
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await notifications?.stop();
    await stack?.stop();
    await Promise.all(Object.values(receivers).map((r) => r.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `lading events …` against the running notifications, as an operator runs it. */
  function events(...args: string[]): { code: number | null; json: any; out: string } {
    const r = spawnSync(process.execPath, [LADING, 'events', ...args, '--url', notifications.url], {
      env: { ...process.env, LADING_HTTP_SECRET: stack.env.LADING_HTTP_SECRET, LADING_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    let json: any;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { code: r.status, json, out: `${r.stdout}${r.stderr}` };
  }

  it('delivers every event with Distribution fields, signed, to the healthy endpoint; the flaky one gets them after its failures', async () => {
    const expected = await runEventScenario(client, 'whk');
    const ours = (r: Receiver) => r.events().filter((e) => e.target.repository.startsWith('whk/'));
    const distinct = (list: RegistryEvent[]) => [...new Map(list.map((e) => [e.id, e])).values()];
    await eventually(() => distinct(ours(receivers.healthy)).length >= expected.length, 60_000, 'the healthy endpoint');
    expect(scenarioProblems(distinct(ours(receivers.healthy)), expected)).toEqual([]);
    for (const post of receivers.healthy.posts) {
      expect(post.headers['content-type']).toBe('application/vnd.docker.distribution.events.v1+json');
      expect(post.headers.authorization).toBe('Bearer for-the-receiver');
      expect(verifyWebhook(secret, post.body, post.headers['lading-signature'] as string, Date.now() / 1000)).toBe(true);
    }
    await eventually(() => distinct(ours(receivers.flaky)).length >= expected.length, 60_000, 'the flaky endpoint');
    expect(scenarioProblems(distinct(ours(receivers.flaky)), expected)).toEqual([]);
    expect(receivers.flaky.posts.length).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('makes dead letters of a dead endpoint, and `lading events` lists them and redelivers them', async () => {
    const wanted = () => receivers.healthy.events().filter((e) => e.target.repository.startsWith('whk/') && e.action !== 'pull');
    const expectedIds = new Set(wanted().map((e) => e.id));
    await eventually(async () => events('endpoints').json?.endpoints?.find((e: { name: string }) => e.name === 'dead')?.dead >= expectedIds.size, 60_000, 'dead letters');
    const listed = events('endpoints');
    expect(listed.code).toBe(0);
    expect(listed.json.endpoints.find((e: { name: string }) => e.name === 'healthy')).toMatchObject({ pending: 0, dead: 0 });
    const dead = events('deliveries', '--endpoint', 'dead', '--status', 'dead', '--limit', '1000');
    expect(new Set(dead.json.deliveries.map((d: { eventId: string }) => d.eventId))).toEqual(expectedIds);
    expect(dead.json.deliveries.every((d: { attempts: number; lastStatus: number }) => d.attempts === 2 && d.lastStatus === 503)).toBe(true);
    const log = events('attempts', 'dead');
    expect(log.json.attempts[0]).toMatchObject({ statusCode: 503, error: 'HTTP 503' });

    receivers.dead.answerWith(() => 204);
    const before = receivers.dead.posts.length;
    const redone = events('redeliver', 'dead');
    expect(redone.json.redelivered).toBe(expectedIds.size);
    await eventually(() => new Set(receivers.dead.posts.slice(before).flatMap((p) => JSON.parse(p.body.toString()).events.map((e: RegistryEvent) => e.id))).size >= expectedIds.size, 60_000, 'the redelivery');
    expect(receivers.dead.events().some((e) => e.action === 'pull')).toBe(false);
  }, 120_000);

  it('refuses the admin API without the token, and names unknown endpoints and bad ids', async () => {
    const bare = await fetch(`${notifications.url}/admin/webhooks/endpoints`);
    expect(bare.status).toBe(401);
    expect(events('pause', 'nope').code).toBe(1);
    expect(events('pause', 'nope').json).toEqual({ error: 'no webhook endpoint named nope' });
    expect(events('redeliver', 'healthy', 'not-a-uuid').json).toEqual({ error: 'an event id is a lowercase uuid' });
    expect(events('pause', 'flaky').json).toEqual({ name: 'flaky', paused: true });
    expect(events('endpoints').json.endpoints.find((e: { name: string }) => e.name === 'flaky').paused).toBe(true);
    expect(events('resume', 'flaky').json).toEqual({ name: 'flaky', paused: false });
  }, 120_000);
});
