import { randomBytes, randomUUID } from 'node:crypto';
import { eventually } from '@lading/testing';
import { findTraces, jaegerOtlp, type JaegerSpan } from '../support/jaeger';
import { freePort, type LadingProcess, startAppEntryPoint, startLading } from '../support/registry-processes';

/**
 * Spans of the last requests before a SIGTERM reach the collector: the process closes its app, then
 * exports what its batch processor holds, then dies of the signal. The batch delay is set far beyond
 * the test, so the only export that can carry the span is the one at shutdown. Against the real
 * Jaeger, for both ways of starting an app: `lading serve <app>` and the app's own entry point.
 */
describe('tracing: the spans of the last requests are exported on SIGTERM', () => {
  const started: LadingProcess[] = [];
  afterAll(async () => {
    await Promise.all(started.map((p) => p.kill9()));
  });

  it.each([
    ['lading serve gateway', startLading],
    ['node dist/apps/gateway/src/main.js', startAppEntryPoint],
  ])('%s: a request, SIGTERM at once, and its span is in Jaeger', async (_, start) => {
    const port = await freePort();
    const service = `lading-shutdown-${randomUUID().slice(0, 8)}`;
    const gateway = await start(
      'gateway',
      {
        LADING_HTTP_ADDR: `127.0.0.1:${port}`,
        LADING_HTTP_SECRET: randomBytes(24).toString('hex'),
        // The base check is answered by the gateway itself: no service needs to run.
        LADING_SERVICES_BLOBUPLOAD_URL: 'http://127.0.0.1:9',
        LADING_SERVICES_MANIFESTS_URL: 'http://127.0.0.1:9',
        OTEL_EXPORTER_OTLP_ENDPOINT: jaegerOtlp(),
        OTEL_SERVICE_NAME: service,
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_SCHEDULE_DELAY: '3600000',
      },
      port,
    );
    started.push(gateway);
    const r = await fetch(`${gateway.url}/v2/`);
    expect(r.status).toBe(200);
    const exited = new Promise<NodeJS.Signals | null>((ok) => gateway.proc.once('exit', (_code, signal) => ok(signal)));
    gateway.proc.kill('SIGTERM');
    // It dies of the signal, as a process without a handler would (not a plain exit 0).
    expect(await exited).toBe('SIGTERM');
    // The service name is this test's own: the request's trace is the only one with a server span.
    let root: JaegerSpan | undefined;
    await eventually(
      async () => {
        const spans = (await findTraces(service)).flatMap((t) => t.spans);
        root = spans.find((s) => s.tags['span.kind'] === 'server' && s.parent === undefined);
        return root !== undefined;
      },
      20_000,
      'the request\'s trace in Jaeger',
    );
    expect(root).toMatchObject({ operationName: 'GET /v2/', tags: expect.objectContaining({ 'url.path': '/v2/', 'http.response.status_code': 200 }) });
  }, 120_000);
});
