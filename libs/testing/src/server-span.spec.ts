import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { RPCType, getRPCMetadata } from '@opentelemetry/core';
import { parseV2Path, traceparentOf, withSpan } from '@lading/contracts';
import { incomingAttributes, nameServerSpan, requestTraceparent, traceIncomingRequests } from '@lading/nest-common';
import { recordSpans } from './tracing';

const spans = recordSpans();
beforeEach(() => spans.reset());

/** Requests the door of the server under test drops: those with `x-drop` set. */
const dropped: IncomingMessage[] = [];
traceIncomingRequests(http, (req) => (req.headers['x-drop'] ? (dropped.push(req), true) : false));

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
let handler: Handler = (_req, res) => void res.end();
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => void handler(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

/** Sends a request with node:http (not instrumented here) and reads its answer whole. */
function send(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** The server spans ended, once there are `n` (a span ends at the response's `close`, which may come after the client's answer). */
async function serverSpanEnded(n = 1) {
  for (let i = 0; i < 1000; i++) {
    const s = spans.spans().filter((x) => x.kind === SpanKind.SERVER);
    if (s.length >= n) return s;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`fewer than ${n} server spans ended`);
}

describe("Lading's HTTP server span", () => {
  it('is the root of a request without traceparent, with the stable HTTP attributes, named after the route once named', async () => {
    handler = (req, res) => {
      nameServerSpan(parseV2Path('/v2/library/app/manifests/latest')!);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    await send('/v2/library/app/manifests/latest?x=1', { 'user-agent': 'probe/1.0' });
    const [s] = await serverSpanEnded();
    expect(s.name).toBe('GET /v2/{name}/manifests/{reference}');
    expect(s.parentSpanContext).toBeUndefined();
    expect(s.instrumentationScope.name).toBe('lading');
    expect(s.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.scheme': 'http',
      'url.path': '/v2/library/app/manifests/latest',
      'url.query': 'x=1',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(base).port),
      'network.protocol.version': '1.1',
      'network.peer.address': '127.0.0.1',
      'client.address': '127.0.0.1',
      'user_agent.original': 'probe/1.0',
      'http.route': '/v2/{name}/manifests/{reference}',
      'http.response.status_code': 200,
    });
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('continues the traceparent it is sent, and the handler runs in its context through awaits', async () => {
    let inHandler: string | null = null;
    let scopeTraceparent: string | null = null;
    handler = async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1));
      inHandler = traceparentOf();
      scopeTraceparent = requestTraceparent();
      await withSpan('manifest.get', {}, async () => undefined);
      res.end();
    };
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await send('/v2/library/app/manifests/latest', { traceparent: parent });
    const [s] = await serverSpanEnded();
    expect(s.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(s.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(inHandler).toBe(`00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`);
    expect(scopeTraceparent).toBe(inHandler);
    const [op] = spans.named('manifest.get');
    expect(op.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
  });

  it("runs the response's close listeners (the access log line) and a streamed body's reads in the span's context", async () => {
    let atClose: string | undefined;
    const whileReading: (string | undefined)[] = [];
    handler = async (req, res) => {
      res.once('close', () => (atClose = trace.getActiveSpan()?.spanContext().spanId));
      for await (const chunk of req) {
        void chunk;
        whileReading.push(trace.getActiveSpan()?.spanContext().spanId);
      }
      res.end();
    };
    await new Promise<void>((ok, fail) => {
      const req = http.request(`${base}/v2/library/app/blobs/uploads/x`, { method: 'PATCH', agent: false }, (res) =>
        res.resume().on('end', ok),
      );
      req.on('error', fail);
      req.write('a'.repeat(70_000));
      setTimeout(() => req.end('b'.repeat(70_000)), 20);
    });
    const [s] = await serverSpanEnded();
    for (let i = 0; i < 100 && atClose === undefined; i++) await new Promise((r) => setImmediate(r));
    expect(atClose).toBe(s.spanContext().spanId);
    expect(whileReading.length).toBeGreaterThan(1);
    expect(new Set(whileReading)).toEqual(new Set([s.spanContext().spanId]));
  });

  it('gives the handler the HTTP RPC metadata naming its span', async () => {
    let rpc: ReturnType<typeof getRPCMetadata>;
    handler = (_req, res) => {
      rpc = getRPCMetadata(context.active());
      res.end();
    };
    await send('/v2/');
    const [s] = await serverSpanEnded();
    expect(rpc!.type).toBe(RPCType.HTTP);
    expect(rpc!.span.spanContext().spanId).toBe(s.spanContext().spanId);
    // No route named: the span keeps the method as its name and has no http.route.
    expect(s.name).toBe('GET');
    expect(s.attributes['http.route']).toBeUndefined();
  });

  it('marks a 5xx failed and a 4xx not', async () => {
    handler = (req, res) => void res.writeHead(req.url === '/500' ? 503 : 404).end();
    await send('/500');
    await send('/404');
    const byPath = new Map((await serverSpanEnded(2)).map((s) => [s.attributes['url.path'], s]));
    expect(byPath.get('/500')!.status.code).toBe(SpanStatusCode.ERROR);
    expect(byPath.get('/500')!.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(byPath.get('/404')!.status.code).toBe(SpanStatusCode.UNSET);
    expect(byPath.get('/404')!.attributes['error.type']).toBeUndefined();
  });

  it('ends failed when the response closes before it is complete', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('abc');
      res.destroy();
    };
    await send('/cut').catch(() => undefined);
    const [s] = await serverSpanEnded();
    expect(s.status.code).toBe(SpanStatusCode.ERROR);
    expect(s.attributes['error.type']).toBe('aborted');
    expect(s.attributes['http.response.status_code']).toBeUndefined();
  });

  it('makes no span for a probe, nor for a request the door drops, and serves both with no span active', async () => {
    const active: (string | undefined)[] = [];
    handler = (_req, res) => {
      active.push(trace.getActiveSpan()?.spanContext().spanId);
      res.end();
    };
    dropped.length = 0;
    await send('/healthz');
    await send('/metrics');
    await send('/v2/', { 'x-drop': '1' });
    await send('/v2/');
    await serverSpanEnded();
    expect(dropped).toHaveLength(1);
    expect(active.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(active[3]).toBeDefined();
    expect(spans.spans().map((s) => s.attributes['url.path'])).toEqual(['/v2/']);
  });

  it('is put in front of Server#emit once, however often it is asked', async () => {
    traceIncomingRequests(http);
    handler = (_req, res) => void res.end();
    await send('/v2/');
    await serverSpanEnded();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(spans.spans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1);
  });
});

describe('incomingAttributes', () => {
  const req = (over: Partial<IncomingMessage> & { headers?: Record<string, string> }) =>
    ({
      method: 'GET',
      url: '/',
      httpVersion: '1.1',
      headers: {},
      socket: { remoteAddress: '::1', remotePort: 5 },
      ...over,
    }) as IncomingMessage;

  it('reads an IPv6 Host with its port, and a Host without one', () => {
    expect(incomingAttributes(req({ headers: { host: '[::1]:5000' } }))).toMatchObject({
      'server.address': '[::1]',
      'server.port': 5000,
    });
    const a = incomingAttributes(req({ headers: { host: 'registry.example' } }));
    expect(a['server.address']).toBe('registry.example');
    expect(a['server.port']).toBeUndefined();
  });

  it("takes the client's address from X-Forwarded-For, keeping the peer's", () => {
    expect(incomingAttributes(req({ headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' } }))).toMatchObject({
      'client.address': '203.0.113.7',
      'network.peer.address': '::1',
    });
    expect(incomingAttributes(req({}))['client.address']).toBe('::1');
  });

  it('names a method the conventions do not know _OTHER, keeping the original', () => {
    expect(incomingAttributes(req({ method: 'PROPFIND' }))).toMatchObject({
      'http.request.method': '_OTHER',
      'http.request.method_original': 'PROPFIND',
    });
  });

  it('sets no url.query for a bare or empty query', () => {
    expect(incomingAttributes(req({ url: '/v2/' }))['url.query']).toBeUndefined();
    expect(incomingAttributes(req({ url: '/v2/?' }))).toMatchObject({ 'url.path': '/v2/' });
    expect(incomingAttributes(req({ url: '/v2/?' }))['url.query']).toBeUndefined();
  });
});
