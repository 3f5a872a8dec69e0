import { randomImage, RegistryTestClient } from '@lading/testing';
import { debugListenerUrl } from '@lading/nest-common';
import { startTestRegistry, type TestRegistry } from './embedded.harness';

jest.setTimeout(60_000);

/** The value of the sample `name{labels}` in a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('embedded registry: metrics on the debug listener (http.debug)', () => {
  let reg: TestRegistry;
  let c: RegistryTestClient;
  let debug: string;
  const scrape = async () => (await fetch(`${debug}/metrics`)).text();

  beforeAll(async () => {
    reg = await startTestRegistry({ LADING_HTTP_DEBUG_ADDR: '127.0.0.1:0' });
    c = new RegistryTestClient(reg.url);
    debug = debugListenerUrl(reg.app)!;
  });
  afterAll(async () => {
    await c?.close();
    await reg?.close();
  });

  it('serves the Prometheus text format on its own port, and nothing else there', async () => {
    expect(debug).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(debug).not.toBe(reg.url);
    const r = await fetch(`${debug}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await r.text()).toMatch(/^# HELP process_cpu_user_seconds_total /m);
    expect((await fetch(`${debug}/v2/`)).status).toBe(404);
  });

  it('does not serve metrics on the public port', async () => {
    const r = await c.call('GET', '/metrics');
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toMatch(/registry_http_requests_total/);
  });

  it('counts requests per operation, method and code, with their duration and bytes', async () => {
    const image = randomImage({ layers: 1, layerSize: 50_000 });
    const before = await scrape();
    const put0 = sample(before, 'registry_http_requests_total', { handler: 'manifest.put', method: 'PUT', code: '201' }) ?? 0;
    const in0 = sample(before, 'registry_http_request_size_bytes_sum', { handler: 'upload.complete' }) ?? 0;
    expect((await c.pushImage('metrics/app', image)).status).toBe(201);
    expect((await c.call('GET', '/v2/metrics/app/manifests/nope')).status).toBe(404);
    const after = await scrape();
    expect(sample(after, 'registry_http_requests_total', { handler: 'manifest.put', method: 'PUT', code: '201' })).toBe(put0 + 1);
    expect(sample(after, 'registry_http_requests_total', { handler: 'manifest.get', method: 'GET', code: '404' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'registry_http_request_duration_seconds_count', { handler: 'manifest.put', method: 'PUT' })).toBeGreaterThanOrEqual(1);
    // The layer's bytes (and the config's) arrive in the bodies of the uploads' closing PUTs.
    expect(sample(after, 'registry_http_request_size_bytes_sum', { handler: 'upload.complete' })! - in0).toBeGreaterThanOrEqual(50_000);
    expect(sample(after, 'registry_http_in_flight_requests', { handler: 'manifest.put' })).toBe(0);
  });

  it('exports the state of uploads, the outbox, the event bus, GC and the manifest cache', async () => {
    const image = randomImage({ layers: 1 });
    expect((await c.pushImage('metrics/state', image)).status).toBe(201);
    const open = await c.call('POST', '/v2/metrics/state/blobs/uploads/');
    expect(open.status).toBe(202);
    for (let i = 0; i < 2; i++) expect((await c.call('GET', '/v2/metrics/state/manifests/latest')).status).toBe(200);
    const text = await scrape();
    expect(sample(text, 'lading_upload_sessions_open', {})).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'lading_outbox_backlog_events', {})).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'lading_outbox_oldest_age_seconds', {})).toBeGreaterThanOrEqual(0);
    for (const queue of ['blobs', 'manifests', 'links']) expect(sample(text, 'lading_gc_queue_depth', { queue })).toBeGreaterThanOrEqual(0);
    // The second GET is served from the cache (the embedded process is the database's only writer).
    expect(sample(text, 'lading_manifest_cache_requests_total', { result: 'hit' })).toBeGreaterThanOrEqual(1);
    const relayed = () => fetch(`${debug}/metrics`).then(async (r) => sample(await r.text(), 'lading_outbox_relayed_events_total', {}) ?? 0);
    for (let i = 0; i < 100 && (await relayed()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await relayed()).toBeGreaterThanOrEqual(1);
    expect(sample(await scrape(), 'lading_events_publish_duration_seconds_count', { bus: 'in-process' })).toBeGreaterThanOrEqual(1);
  });

  it('keeps labels bounded: no repository, digest or tag in any label', async () => {
    await c.call('GET', '/v2/some-unique-repo-name/manifests/some-unique-tag');
    await c.call('GET', '/v2/some-unique-repo-name/nonsense');
    const text = await scrape();
    expect(text).not.toMatch(/some-unique|sha256:/);
    expect(sample(text, 'registry_http_requests_total', { handler: 'v2.unknown', method: 'GET', code: '404' })).toBeGreaterThanOrEqual(1);
  });
});
