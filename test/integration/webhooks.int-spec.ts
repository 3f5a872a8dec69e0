import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  CLOUDEVENTS_BATCH_MEDIA_TYPE,
  EVENTS_MEDIA_TYPE,
  verifyWebhook,
  WebhookAddressGuard,
  WebhookDispatcher,
  WebhookSender,
  type DeliverableEvent,
  type WebhookEndpoint,
} from '@lading/app-notifications';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { eventually } from '@lading/testing';
import { createTestDatabase } from '../support/registry-processes';
import { testEndpoint as endpoint, WebhookReceiver as Receiver } from '../support/webhook-receiver';

function events(n: number, repository = 'hooks/app'): DeliverableEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    timestamp: new Date(1_800_000_000_000 + i).toISOString(),
    action: 'push',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository, digest: `sha256:${String(i).padStart(64, '0')}` },
  }));
}

/**
 * Webhook delivery on a real PostgreSQL with real HTTP receivers: each endpoint its own cursor,
 * retries with backoff, dead letters and redelivery, signatures, filters and formats, and two
 * dispatchers (two notifications replicas) delivering each event once.
 */
describe('webhook delivery on PostgreSQL', () => {
  let pg: { url: string; drop(): Promise<void> };
  let db: MetadataDb;
  const guard = new WebhookAddressGuard(['127.0.0.1']);
  const senders: WebhookSender[] = [];
  const dispatchers: WebhookDispatcher[] = [];
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    pg = await createTestDatabase();
    db = new MetadataDb(await openMetadataDb({ url: pg.url, poolSize: 6 }));
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    await Promise.all(senders.splice(0).map((s) => s.close()));
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await db?.dataSource.destroy();
    await pg?.drop();
  });

  async function receiver(): Promise<Receiver> {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  }
  function dispatcher(endpoints: WebhookEndpoint[]): WebhookDispatcher {
    const sender = new WebhookSender(guard);
    senders.push(sender);
    const d = new WebhookDispatcher(db, endpoints, sender, { pollMs: 20, batchSize: 25 });
    dispatchers.push(d);
    return d;
  }

  it('delivers every event in order, signed, with the reference body; a stalled endpoint delays no other', async () => {
    const healthy = await receiver();
    const stalled = await receiver();
    const held: ServerResponse[] = [];
    stalled.answer = (res) => held.push(res); // never answers while the test runs
    const d = dispatcher([
      endpoint('healthy', healthy.url, { secret: 'sig-secret', headers: { Authorization: ['Bearer abc'] } }),
      endpoint('stalled', stalled.url, { timeout: 60_000 }),
    ]);
    d.start();
    const sent = events(120);
    try {
      await deliversWhileStalled(d, sent, healthy, stalled);
    } finally {
      held.forEach((res) => res.destroy()); // else stopping waits out the stalled POST's timeout
    }
  });

  /** The healthy endpoint gets all of `sent`, in order and signed, while the stalled one's first POST stays open. */
  async function deliversWhileStalled(d: WebhookDispatcher, sent: DeliverableEvent[], healthy: Receiver, stalled: Receiver): Promise<void> {
    await d.accept(sent);
    await eventually(() => healthy.ids().length >= sent.length, 20_000, 'the healthy endpoint');
    expect(healthy.ids()).toEqual(sent.map((e) => e.id));
    // The stalled endpoint has its first POST still open, and the healthy one got everything.
    expect(stalled.posts).toHaveLength(1);
    for (const { headers, body } of healthy.posts) {
      expect(headers['content-type']).toBe(EVENTS_MEDIA_TYPE);
      expect(headers.authorization).toBe('Bearer abc');
      expect(verifyWebhook('sig-secret', body, headers['lading-signature'] as string, Date.now() / 1000)).toBe(true);
      expect(Object.keys(JSON.parse(body.toString()))).toEqual(['events']);
    }
    // The last POST may still be being recorded as delivered when its events have arrived.
    await eventually(async () => (await db.read.webhooks.endpointStates(['healthy']))[0].delivered === sent.length, 20_000, 'the healthy deliveries recorded');
    const [state] = await db.read.webhooks.endpointStates(['healthy']);
    expect(state).toMatchObject({ pending: 0, delivered: sent.length, dead: 0, failures: 0 });
    const stalledState = (await db.read.webhooks.endpointStates(['stalled']))[0];
    expect(stalledState.pending).toBe(sent.length);
  }

  it('retries a failing endpoint with backoff until it recovers, logging every attempt', async () => {
    const flaky = await receiver();
    flaky.answer = (res, n) => res.writeHead(n <= 2 ? 500 : 204).end(n <= 2 ? 'boom' : undefined);
    const d = dispatcher([endpoint('flaky', flaky.url, { maxattempts: 5 })]);
    d.start();
    const sent = events(3, 'hooks/flaky');
    await d.accept(sent);
    await eventually(async () => (await db.read.webhooks.endpointStates(['flaky']))[0].delivered === 3, 20_000, 'delivery after recovery');
    const log = await db.read.webhooks.listAttempts('flaky', 10);
    expect(log.map((a) => a.statusCode)).toEqual([204, 500, 500]);
    expect(log[2]).toMatchObject({ error: 'HTTP 500', responseSnippet: 'boom' });
    expect((await db.read.webhooks.listDeliveries({ endpoint: 'flaky', limit: 10 })).map((x) => x.attempts)).toEqual([3, 3, 3]);
  });

  it('makes dead letters of what a dead endpoint never takes, and redelivers them when asked', async () => {
    const gone = await receiver();
    gone.answer = (res) => res.writeHead(503).end();
    const d = dispatcher([endpoint('dead', gone.url, { maxattempts: 2 })]);
    d.start();
    const sent = events(4, 'hooks/dead');
    await d.accept(sent);
    await eventually(async () => (await db.read.webhooks.endpointStates(['dead']))[0].dead === 4, 20_000, 'dead letters');
    expect(gone.posts).toHaveLength(2);
    gone.answer = (res) => res.writeHead(200).end();
    expect(await db.read.webhooks.redeliver('dead')).toBe(4);
    await eventually(async () => (await db.read.webhooks.endpointStates(['dead']))[0].delivered === 4, 20_000, 'redelivery');
    expect(gone.ids().slice(-4)).toEqual(sent.map((e) => e.id));
    // One event again, on demand, although it was delivered.
    expect(await db.read.webhooks.redeliver('dead', sent[1].id)).toBe(1);
    await eventually(() => gone.ids().length === 3 * 4 + 1, 20_000, 'the single redelivery');
    expect(gone.ids().at(-1)).toBe(sent[1].id);
  });

  it('backs an endpoint off after `threshold` consecutive failures, and a pause holds everything', async () => {
    const down = await receiver();
    down.answer = (res) => res.writeHead(500).end();
    const d = dispatcher([endpoint('threshold', down.url, { threshold: 2, backoff: 60_000, maxbackoff: 10, maxattempts: 50, timeout: 1000 })]);
    d.start();
    await d.accept(events(1, 'hooks/threshold'));
    await eventually(async () => (await db.read.webhooks.endpointStates(['threshold']))[0].backoffUntil !== null, 20_000, 'the backoff');
    expect(down.posts).toHaveLength(2);
    await db.read.webhooks.setPaused('threshold', true);
    await db.read.webhooks.redeliver('threshold'); // ends the backoff (nothing dead to revive)
    await d.accept(events(2, 'hooks/threshold'));
    const [paused] = await db.read.webhooks.endpointStates(['threshold']);
    expect(paused).toMatchObject({ paused: true, pending: 3 });
    await new Promise((r) => setTimeout(r, 200));
    expect(down.posts).toHaveLength(2);
  });

  it('skips ignored actions and media types, and speaks CloudEvents when asked', async () => {
    const ce = await receiver();
    const d = dispatcher([
      endpoint('cloudevents', ce.url, { format: 'cloudevents', ignore: { actions: ['pull'], mediatypes: ['application/octet-stream'] } }),
    ]);
    d.start();
    const [kept] = events(1, 'hooks/ce');
    const pull = { ...events(1, 'hooks/ce')[0], action: 'pull' };
    const layer = { ...events(1, 'hooks/ce')[0], target: { mediaType: 'application/octet-stream', repository: 'hooks/ce' } };
    await d.accept([pull, layer, kept]);
    await eventually(() => ce.posts.length === 1, 20_000, 'the CloudEvents POST');
    const [{ headers, body }] = ce.posts;
    expect(headers['content-type']).toBe(CLOUDEVENTS_BATCH_MEDIA_TYPE);
    const batch = JSON.parse(body.toString());
    expect(batch).toEqual([
      expect.objectContaining({ specversion: '1.0', id: kept.id, type: 'io.lading.registry.push', subject: 'hooks/ce', datacontenttype: 'application/json', data: kept }),
    ]);
    await eventually(async () => (await db.read.webhooks.endpointStates(['cloudevents']))[0].delivered === 1, 20_000, 'the delivery recorded');
    expect((await db.read.webhooks.endpointStates(['cloudevents']))[0]).toMatchObject({ delivered: 1, pending: 0 });
  });

  it('prunes delivered events and dead letters past the retention, never a pending one', async () => {
    const ok = await receiver();
    const d = dispatcher([endpoint('pruned', ok.url), endpoint('paused', ok.url)]);
    await db.read.webhooks.setPaused('paused', true);
    d.start();
    await d.accept(events(5, 'hooks/pruned'));
    await eventually(async () => (await db.read.webhooks.endpointStates(['pruned']))[0].delivered === 5, 20_000, 'the deliveries');
    await db.read.webhooks.prune(0);
    const states = await db.read.webhooks.endpointStates(['pruned', 'paused']);
    const [pruned, paused] = ['pruned', 'paused'].map((n) => states.find((x) => x.name === n));
    expect(pruned).toMatchObject({ delivered: 0, pending: 0 });
    expect(paused).toMatchObject({ pending: 5 });
    expect(await db.read.webhooks.listAttempts('pruned', 10)).toEqual([]);
  });

  it('two dispatchers (two notifications replicas) deliver each event once', async () => {
    const both = await receiver();
    const shared = endpoint('replicated', both.url);
    const [a, b] = [dispatcher([shared]), dispatcher([shared])];
    a.start();
    b.start();
    const sent = events(400, 'hooks/replicated');
    await Promise.all([a.accept(sent.slice(0, 200)), b.accept(sent.slice(200)), a.accept(sent.slice(100, 300))]);
    await eventually(async () => (await db.read.webhooks.endpointStates(['replicated']))[0].delivered === sent.length, 20_000, 'every delivery');
    const ids = both.ids();
    expect(new Set(ids).size).toBe(sent.length);
    expect(ids).toHaveLength(sent.length);
  });
});
