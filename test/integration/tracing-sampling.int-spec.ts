import { randomUUID } from 'node:crypto';
import { eventually, randomImage, RegistryTestClient } from '@lading/testing';
import { findTraces, jaegerOtlp, traceOfRequest } from '../support/jaeger';
import { startSplit, type SplitStack } from '../support/registry-processes';

/**
 * Sampling at 50 % (`parentbased_traceidratio`) across the split stack, into the real Jaeger: the
 * gateway decides each request at the door and every service follows that decision, so a request
 * is either one whole trace (gateway and manifests spans) or no span at all, in any process: no
 * service draws again and starts a trace of its own. A client's `traceparent` decides for its
 * request either way.
 */
describe('sampling decided at the door, followed by every service', () => {
  let stack: SplitStack;
  let client: RegistryTestClient;
  const name = `sampled/${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    stack = await startSplit({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: jaegerOtlp(),
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.5',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
      withWorkers: false,
    });
    client = new RegistryTestClient(stack.url);
  }, 180_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined); // the test closed it already, unless it failed before
    await stack?.stop();
  });

  it('each request is one whole trace or none at all; a client traceparent decides', async () => {
    const image = randomImage({ layers: 1, layerSize: 1024 });
    expect((await client.pushImage(name, image, 'v1')).status).toBe(201);
    const get = async (headers: Record<string, string>) => {
      const id = randomUUID();
      const r = await client.call('GET', `/v2/${name}/manifests/v1`, { headers: { accept: image.mediaType, 'x-request-id': id, ...headers } });
      expect(r.status).toBe(200);
      return id;
    };
    const roots: string[] = [];
    for (let i = 0; i < 60; i++) roots.push(await get({}));
    const clientTrace = () => randomUUID().replace(/-/g, '');
    const sampled: { id: string; traceId: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const traceId = clientTrace();
      sampled.push({ id: await get({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` }), traceId });
    }
    const dropped: string[] = [];
    for (let i = 0; i < 5; i++) dropped.push(await get({ traceparent: `00-${clientTrace()}-00f067aa0ba902b7-00` }));

    // A graceful stop exports every span still buffered: after it, what Jaeger will get is sent.
    await client.close();
    await Promise.all(Object.values(stack.apps).map((p) => p.stop()));
    const last = sampled[sampled.length - 1];
    await eventually(async () => (await traceOfRequest(last.id))?.spans.some((s) => s.service === 'lading-manifests') === true, 60_000, 'the last sampled trace');

    /** The services that made a span carrying request id `id`, by trace. */
    const spansOf = async (id: string) => {
      const byService = await Promise.all(['lading-gateway', 'lading-manifests'].map((svc) => findTraces(svc, { 'lading.request_id': id }, 5)));
      const traces = new Map<string, Set<string>>();
      for (const found of byService)
        for (const t of found) traces.set(t.traceId, new Set(t.spans.map((s) => `${s.service} ${s.operationName}`)));
      return traces;
    };
    const whole = (spans: Set<string>) =>
      spans.has('lading-gateway GET /v2/{name}/manifests/{reference}') &&
      spans.has('lading-gateway manifest.get') &&
      spans.has('lading-manifests GET /v2/{name}/manifests/{reference}') &&
      spans.has('lading-manifests manifest.get');

    let traced = 0;
    const broken: string[] = [];
    for (const id of roots) {
      const traces = await spansOf(id);
      if (traces.size === 0) continue;
      traced++;
      const [spans] = [...traces.values()];
      if (traces.size !== 1 || !whole(spans)) broken.push(`${id}: ${[...traces.values()].map((s) => [...s].join(', ')).join(' | ')}`);
    }
    expect(broken).toEqual([]);
    // 60 draws at 0.5: outside 10..50 has a chance below 1e-7.
    expect(traced).toBeGreaterThanOrEqual(10);
    expect(traced).toBeLessThanOrEqual(50);
    for (const s of sampled) {
      const traces = await spansOf(s.id);
      expect([...traces.keys()]).toEqual([s.traceId]);
      expect(whole([...traces.values()][0])).toBe(true);
    }
    for (const id of dropped) expect((await spansOf(id)).size).toBe(0);
    console.log(`sampling at 0.5: ${traced} of ${roots.length} requests traced, each whole; 5 sampled and 5 unsampled client traceparents followed`);
  }, 240_000);
});
