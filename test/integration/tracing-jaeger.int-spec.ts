import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { eventually, randomBlob, randomImage, RegistryTestClient, type TestBlob } from '@lading/testing';
import { jaegerOtlp, type JaegerSpan, traceOfRequest } from '../support/jaeger';
import { startSplitOnKafka } from '../support/kafka';
import type { LadingProcess, SplitStack } from '../support/registry-processes';
import { WebhookReceiver } from '../support/webhook-receiver';

/** What a trace must hold, by name: each entry a description and a test of one span. */
const has = (spans: JaegerSpan[], test: (s: JaegerSpan) => boolean) => spans.some(test);

/** The missing parts of a trace that goes from the gateway through a service to the webhook. */
function missing(spans: JaegerSpan[], service: string, storageAction: string): string[] {
  const wanted: Record<string, (s: JaegerSpan) => boolean> = {
    'gateway root server span': (s) => s.service === 'lading-gateway' && s.tags['span.kind'] === 'server' && s.parent === undefined,
    'service server span': (s) => s.service === service && s.tags['span.kind'] === 'server',
    'database (pg instrumentation)': (s) => s.service === service && s.tags['otel.scope.name'] === '@opentelemetry/instrumentation-pg',
    'store call': (s) => s.service === service && s.operationName.startsWith('store.'),
    [`storage ${storageAction}`]: (s) => s.service === service && s.operationName === `storage.${storageAction}`,
    'relay publish': (s) => s.service === 'lading-notifications' && s.operationName === 'publish',
    'Kafka produce': (s) => s.service === 'lading-notifications' && s.operationName.startsWith('send ') && s.tags['messaging.system'] === 'kafka',
    'webhook delivery': (s) => s.service === 'lading-notifications' && s.operationName === 'webhook.deliver',
  };
  return Object.entries(wanted)
    .filter(([, test]) => !has(spans, test))
    .map(([name]) => name);
}

/**
 * Tracing through the split stack into a real Jaeger (OTLP in, query API out): a push and a pull
 * each make one trace per request that holds the gateway, the service, the database, the storage,
 * the relay, the Kafka produce and the webhook delivery, and the webhook receiver gets the same
 * trace in its `traceparent`.
 */
describe('traces in Jaeger across the split stack, Kafka and a webhook', () => {
  const receiver = new WebhookReceiver();
  let dir: string;
  let stack: SplitStack;
  let notifications: LadingProcess;
  let client: RegistryTestClient;
  const name = `traced/${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    await receiver.start();
    dir = mkdtempSync(join(tmpdir(), 'lading-tracing-'));
    const config = join(dir, 'lading.yml');
    writeFileSync(config, stringify({ notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: 'traced', url: receiver.url, timeout: '5s' }] } }));
    ({ stack, notifications } = await startSplitOnKafka('tracing', {
      LADING_CONFIG: config,
      OTEL_EXPORTER_OTLP_ENDPOINT: jaegerOtlp(),
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    }));
    client = new RegistryTestClient(stack.url);
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await notifications?.stop();
    await stack?.stop();
    await receiver.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The POST the receiver got with the event of `digest` (action `action`), once it came. */
  async function receivedPost(digest: string, action: string) {
    await eventually(() => receiver.posts.some((p) => p.body.toString().includes(digest) && p.body.toString().includes(`"${action}"`)), 60_000, `the ${action} event of ${digest}`);
    return receiver.posts.find((p) => p.body.toString().includes(digest) && p.body.toString().includes(`"${action}"`))!;
  }

  /** Pushes one blob in a session (POST, PUT), each request with its own id; waits for its webhook. */
  async function pushBlob(blob: TestBlob): Promise<{ post: string; put: string }> {
    const ids = { post: randomUUID(), put: randomUUID() };
    const start = await client.call('POST', `/v2/${name}/blobs/uploads/`, { headers: { 'x-request-id': ids.post } });
    expect(start.status).toBe(202);
    const put = await client.call('PUT', `${start.headers.location}?digest=${blob.digest}`, {
      headers: { 'x-request-id': ids.put, 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: blob.bytes,
    });
    expect(put.status).toBe(201);
    // One event per webhook POST: the next push waits, so that POST carries this trace alone.
    await receivedPost(blob.digest, 'push');
    return ids;
  }

  it('one trace per push request: gateway, blob-upload, database, storage, relay, Kafka produce and webhook, and the receiver joins it', async () => {
    const image = randomImage({ layers: 1, layerSize: 4096 });
    await pushBlob(image.config);
    const layer = await pushBlob(image.layers[0]);
    const manifestId = randomUUID();
    const put = await client.call('PUT', `/v2/${name}/manifests/v1`, { headers: { 'content-type': image.mediaType, 'x-request-id': manifestId }, body: image.manifest });
    expect(put.status).toBe(201);

    let trace: Awaited<ReturnType<typeof traceOfRequest>>;
    await eventually(
      async () => {
        trace = await traceOfRequest(layer.put);
        return trace !== undefined && missing(trace.spans, 'lading-blob-upload', 'commitUpload').length === 0;
      },
      60_000,
      'the trace of the layer PUT in Jaeger',
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; missing: ${trace ? missing(trace.spans, 'lading-blob-upload', 'commitUpload').join(', ') : 'the whole trace'}`);
    });
    const spans = trace!.spans;
    const root = spans.find((s) => s.parent === undefined)!;
    expect(root).toMatchObject({ service: 'lading-gateway', operationName: 'PUT /v2/{name}/blobs/uploads/{uuid}' });
    expect(root.tags).toMatchObject({ 'oci.operation': 'upload.complete', 'oci.repository': name, 'http.route': '/v2/{name}/blobs/uploads/{uuid}' });
    // Every span hangs on the tree that starts at the root: no piece of it started a trace of its own.
    const ids = new Set(spans.map((s) => s.spanID));
    expect(spans.filter((s) => s !== root && !ids.has(s.parent!)).map((s) => s.operationName)).toEqual([]);

    // Each Kafka record's producer span is the bus's own (its context in the record's headers), not kafkajs's.
    expect(spans.filter((s) => s.tags['span.kind'] === 'producer' && s.tags['otel.scope.name'] !== 'lading').map((s) => s.operationName)).toEqual([]);

    // The session's requests carry its id; the closing PUT links to the POST that opened it.
    const session = root.tags['oci.upload.session_id'];
    expect(session).toMatch(/^[0-9a-f-]{36}$/);
    const opened = await traceOfRequest(layer.post);
    expect(opened!.spans.find((s) => s.parent === undefined)!.tags['oci.upload.session_id']).toBe(session);
    const complete = spans.find((s) => s.service === 'lading-blob-upload' && s.operationName === 'upload.complete')!;
    expect(complete.references.some((r) => r.traceID === opened!.traceId)).toBe(true);

    // The webhook request continued the same trace.
    const post = await receivedPost(image.layers[0].digest, 'push');
    expect(String(post.headers.traceparent).split('-')[1]).toBe(trace!.traceId);

    // The manifest PUT's trace reaches the webhook too.
    await eventually(async () => (await traceOfRequest(manifestId))?.spans.some((s) => s.operationName === 'webhook.deliver') === true, 60_000, 'the manifest PUT trace');
  }, 240_000);

  it('keeps each request its own trace when one relay batch and one webhook POST carry events of several', async () => {
    await notifications.stop();
    const blobs = [randomBlob(1000), randomBlob(1001)];
    const ids = [randomUUID(), randomUUID()];
    await Promise.all(blobs.map((b, i) => client.call('POST', `/v2/${name}/blobs/uploads/?digest=${b.digest}`, { headers: { 'x-request-id': ids[i], 'content-length': String(b.size) }, body: b.bytes })));
    // Both rows wait in the outbox: the relay starting now takes them in one batch.
    notifications = await stack.startExtra('notifications');
    await Promise.all(blobs.map((b) => receivedPost(b.digest, 'push')));
    for (const id of ids) {
      let spans: JaegerSpan[] = [];
      await eventually(
        async () => {
          spans = (await traceOfRequest(id))?.spans ?? [];
          return ['publish', 'webhook.accept', 'webhook.deliver'].every((n) => spans.some((s) => s.operationName === n));
        },
        60_000,
        `the trace of request ${id} through Kafka to the webhook`,
      ).catch((e) => {
        throw new Error(`${(e as Error).message}; it has: ${[...new Set(spans.map((s) => s.operationName))].join(', ')}`);
      });
      expect(spans.filter((s) => s.tags['messaging.system'] === 'kafka' && s.tags['span.kind'] === 'producer')).toHaveLength(1);
    }
  }, 240_000);

  it('one trace per pull request, to the pull event webhook', async () => {
    const image = randomImage({ layers: 1, layerSize: 2048 });
    await client.pushImage(name, image, 'pulled');
    const ids = { manifest: randomUUID(), blob: randomUUID() };
    expect((await client.call('GET', `/v2/${name}/manifests/pulled`, { headers: { 'x-request-id': ids.manifest, accept: image.mediaType } })).status).toBe(200);
    expect((await client.call('GET', `/v2/${name}/blobs/${image.layers[0].digest}`, { headers: { 'x-request-id': ids.blob } })).status).toBe(200);
    let spans: JaegerSpan[] = [];
    await eventually(
      async () => {
        spans = (await traceOfRequest(ids.blob))?.spans ?? [];
        return missing(spans, 'lading-blob-upload', 'readBlob').length === 0;
      },
      60_000,
      'the trace of the blob GET in Jaeger',
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; missing: ${missing(spans, 'lading-blob-upload', 'readBlob').join(', ')}`);
    });
    expect(spans.find((s) => s.operationName === 'storage.readBlob')!.tags['lading.storage.bytes']).toBe(2048);
    await eventually(
      async () => {
        const t = await traceOfRequest(ids.manifest);
        return t?.spans.some((s) => s.service === 'lading-manifests' && s.operationName === 'manifest.get') === true && t.spans.some((s) => s.operationName === 'webhook.deliver');
      },
      60_000,
      'the trace of the manifest GET in Jaeger',
    );
  }, 240_000);
});
