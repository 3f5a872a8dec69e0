/**
 * The HTTP server span of every incoming request, made by Lading itself in front of Node's
 * `Server#emit`, instead of by the HTTP instrumentation's incoming side (its outgoing side, and
 * undici's, still trace the calls Lading makes).
 *
 * Why not the instrumentation's: at 10 % sampling a sampled request is rare, so whatever runs for
 * it alone runs cold (V8 had still not optimised most of the instrumentation's per-request
 * functions after 40 s at 10 %, bench/tracing), and a traced GET cost about 0.9 ms of CPU more
 * than an untraced one. This does for a sampled request only what its span needs: one
 * `propagation.extract`, one span with the stable HTTP semantic-convention attributes (those the
 * instrumentation sets, less the peer's ephemeral port), one context, one `close` listener. Nothing of it
 * runs for a request the door skips (head-sampling.ts) or a probe.
 *
 * What the instrumentation did and this does not: bind the request's and response's emitters to
 * the span's context (not needed: the handler runs in it, and what it starts — awaited promises,
 * a streamed body's reads, the response's `close` listeners such as the access log line — carries
 * it on; server-span.spec checks each), record the OpenTelemetry `http.server.*` metrics (Lading
 * exports its own, `registry_http_*`), capture headers by configuration, and run request and
 * response hooks.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import { otelCore, tracer } from '@lading/contracts';

/** Probes and scrapes: not requests anyone traces. */
export const UNTRACED_PATHS = /^\/(healthz|metrics)(\/|$|\?)/;

/** The methods the semantic conventions name; any other is `_OTHER` (with the original kept). */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'QUERY',
]);

/**
 * The attributes of the server span of `req` when it starts (stable HTTP semantic conventions):
 * method, scheme, path and query, the `Host` it was sent to, the peer's address, the client's (the
 * first `X-Forwarded-For` entry, else the peer), the protocol version and the user agent.
 */
export function incomingAttributes(req: IncomingMessage): Attributes {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const method = req.method ?? 'GET';
  const a: Attributes = {
    'http.request.method': KNOWN_METHODS.has(method) ? method : '_OTHER',
    'url.scheme': 'http',
    'url.path': q < 0 ? url : url.slice(0, q),
    'network.protocol.version': req.httpVersion,
  };
  if (a['http.request.method'] === '_OTHER') a['http.request.method_original'] = method;
  if (q >= 0 && q < url.length - 1) a['url.query'] = url.slice(q + 1);
  const host = req.headers.host;
  if (host) {
    const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
    if (m) {
      a['server.address'] = m[1];
      if (m[2]) a['server.port'] = Number(m[2]);
    }
  }
  const peer = req.socket.remoteAddress;
  if (peer) a['network.peer.address'] = peer;
  const forwarded = req.headers['x-forwarded-for'];
  const client = typeof forwarded === 'string' ? forwarded.split(',', 1)[0].trim() : '';
  if (client || peer) a['client.address'] = client || peer;
  const ua = req.headers['user-agent'];
  if (ua) a['user_agent.original'] = ua;
  return a;
}

/**
 * Ends the server span of a response: its status code, `http.route` and the name it gives
 * (`GET /v2/{name}/manifests/{reference}`) when the route was named, an error for a 5xx or a
 * response that never finished.
 */
function endServerSpan(span: Span, method: string, res: ServerResponse, route: string | undefined): void {
  if (route) {
    span.setAttribute('http.route', route);
    span.updateName(`${method} ${route}`);
  }
  if (!res.writableFinished) {
    // The connection closed before the answer was complete (the client went, or a timeout).
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'response closed before it was complete' });
    span.setAttribute('error.type', 'aborted');
  } else {
    const status = res.statusCode;
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', String(status));
    }
  }
  span.end();
}

type Emit = (this: Server, event: string | symbol, ...args: unknown[]) => boolean;

/** Whether {@link traceIncomingRequests} patched `Server#emit` already. */
const PATCHED = Symbol.for('lading.server_span');

/**
 * Puts the server span in front of `http.Server#emit`: a probe, and a request `drop` (the sampling
 * door, head-sampling.ts) answers true for, having marked it with what it carries on, go to
 * the server's own `emit` untouched; any other gets a server span, a child of the `traceparent`
 * it carries (W3C trace context and baggage, through the configured propagator), and is served in
 * its context with the HTTP RPC metadata set (so `nameServerSpan` can give it the route). Once per
 * process.
 */
export function traceIncomingRequests(
  http: { Server: { prototype: unknown } },
  drop?: (req: IncomingMessage) => boolean,
): void {
  const proto = http.Server.prototype as { emit: Emit & { [PATCHED]?: true } };
  if (proto.emit[PATCHED]) return;
  const bare = proto.emit;
  const { setRPCMetadata, RPCType } = otelCore();
  const lading = tracer();
  const patched = function emit(this: Server, event: string | symbol, req?: unknown, res?: unknown): boolean {
    // `arguments` as they came: a server emits many events, and no array is built for any of them.
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as [string | symbol, ...unknown[]];
    if (event !== 'request') return bare.apply(this, args);
    const request = req as IncomingMessage;
    if (UNTRACED_PATHS.test(request.url ?? '') || drop?.(request)) return bare.apply(this, args);
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const method = request.method ?? 'GET';
    const span = lading.startSpan(method, { kind: SpanKind.SERVER, attributes: incomingAttributes(request) }, parent);
    const rpc: { type: typeof RPCType.HTTP; span: Span; route?: string } = { type: RPCType.HTTP, span };
    (res as ServerResponse).once('close', () => endServerSpan(span, method, res as ServerResponse, rpc.route));
    return context.with(setRPCMetadata(trace.setSpan(parent, span), rpc), () => bare.apply(this, args));
  } as Emit & { [PATCHED]?: true };
  patched[PATCHED] = true;
  proto.emit = patched;
}
