import { trace } from '@opentelemetry/api';
import { shutdownTracing, startTracing, tracingReady } from './tracing';

/** The part of an SDK span this reads. */
interface ReadableResource {
  resource: { asyncAttributesPending?: boolean; attributes: Record<string, unknown> };
}

describe('startTracing', () => {
  const saved = { ...process.env };
  afterAll(async () => {
    await shutdownTracing();
    process.env = saved;
  });

  it('settles the resource (the host detector’s asynchronous host.id) when it starts, not at the first export', async () => {
    // Spans are never ended here, so nothing is exported; the console exporter needs no collector.
    process.env = { ...saved, OTEL_TRACES_EXPORTER: 'console', OTEL_TRACES_SAMPLER: 'always_on' };
    expect(startTracing('lading-test', process.env)).toBeDefined();
    await tracingReady();
    const span = trace.getTracer('probe').startSpan('probe') as unknown as ReadableResource;
    expect(span.resource.asyncAttributesPending).toBe(false);
    expect(span.resource.attributes['service.name']).toBe('lading-test');
  });
});
