import { context, trace, type Context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType, setRPCMetadata } from '@opentelemetry/core';
import { parseV2Path, resolveOperation, systemScope, tracer, traceparentOf, type RequestScope } from '@lading/contracts';
import { forwardedParent, requestTraceparent, toExchange, traceV2Request, type V2Exchange } from '@lading/nest-common';
import { recordSpans } from './tracing';

const spans = recordSpans();
beforeEach(() => spans.reset());

/** A context as the HTTP instrumentation makes one for an incoming request: its server span, active. */
function serverContext(): Context {
  const server = tracer().startSpan('POST');
  const ctx = trace.setSpan(context.active(), server);
  return setRPCMetadata(ctx, { type: RPCType.HTTP, span: server });
}

function exchange(path: string, method: string, scope: Partial<RequestScope> = {}, answer: Record<string, string> = {}): V2Exchange {
  const route = parseV2Path(path)!;
  const operation = resolveOperation(route, method)!;
  const full = { ...systemScope(operation.name, 'library/app'), ...scope };
  const res = { getHeader: (k: string) => answer[k.toLowerCase()] };
  return toExchange(route, operation, full, { originalUrl: path } as never, res as never);
}

describe('request spans', () => {
  it("puts the HTTP server span's context in the request scope", () => {
    const ctx = serverContext();
    const server = trace.getSpan(ctx)!;
    const inner = trace.setSpan(ctx, tracer().startSpan('request handler', {}, ctx));
    expect(context.with(inner, () => requestTraceparent())).toBe(traceparentOf(trace.setSpan(ctx, server)));
  });

  it('serves a request in a span named after its operation, with the oci attributes and the route template', async () => {
    const ctx = serverContext();
    const x = exchange('/v2/library/app/blobs/uploads/', 'POST', {}, { 'docker-upload-uuid': '6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a' });
    await context.with(ctx, () => traceV2Request(x, async () => undefined));
    trace.getSpan(ctx)!.end();
    const [op] = spans.named('upload.start');
    expect(op.parentSpanContext?.spanId).toBe(trace.getSpan(ctx)!.spanContext().spanId);
    expect(op.attributes).toMatchObject({
      'oci.operation': 'upload.start',
      'oci.repository': 'library/app',
      'oci.upload.session_id': '6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a',
    });
    // What the answer told goes on the server span too, so every request of the session carries it.
    expect(spans.named('POST')[0].attributes['oci.upload.session_id']).toBe('6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a');
    expect(getRPCMetadata(ctx)!.route).toBe('/v2/{name}/blobs/uploads/');
  });

  it('names the reference and digest a route carries', async () => {
    const x = exchange('/v2/library/app/manifests/v1', 'PUT', {}, { 'docker-content-digest': `sha256:${'a'.repeat(64)}` });
    await context.with(serverContext(), () => traceV2Request(x, async () => undefined));
    expect(spans.named('manifest.put')[0].attributes).toMatchObject({ 'oci.reference': 'v1', 'oci.digest': `sha256:${'a'.repeat(64)}` });
  });

  it('marks the span failed when serving throws', async () => {
    const x = exchange('/v2/library/app/manifests/v1', 'GET');
    await expect(context.with(serverContext(), () => traceV2Request(x, () => Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
    expect(spans.named('manifest.get')[0].status.code).toBe(2);
  });

  it("continues the signed scope's trace when the active span is in another one", async () => {
    const gateway = tracer().startSpan('gateway');
    const signed = traceparentOf(trace.setSpan(context.active(), gateway))!;
    const sameTrace = trace.setSpan(context.active(), tracer().startSpan('server', {}, trace.setSpan(context.active(), gateway)));
    const scope = { ...systemScope('manifest.get', 'library/app'), traceparent: signed };
    expect(context.with(sameTrace, () => forwardedParent(scope))).toBeUndefined();
    const foreign = context.with(serverContext(), () => forwardedParent(scope));
    expect(trace.getSpanContext(foreign!)?.spanId).toBe(gateway.spanContext().spanId);
  });
});
