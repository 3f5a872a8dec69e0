import type { IncomingMessage } from 'node:http';
import { finished, type Readable, type Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { RoundRobinPool, type Dispatcher } from 'undici';
import { Headers, UnavailableError, UpstreamBusyError, encodeRequestScope, tracingActive, untraced } from '@lading/contracts';
import { signInternalRequest, signedPartsOf, type V2Exchange, type V2Handler } from '@lading/nest-common';

/**
 * Headers that belong to one connection, not to the request, and the client's trace context:
 * never forwarded. `expect` is one of the first here: Node's server already answered `100 Continue` to the client, and undici refuses a
 * request that carries it.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'expect',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  // The client's trace context: the gateway's own (its server span, child of the client's)
  // goes instead, in the signed scope and, when tracing, in headers the instrumentation adds.
  'traceparent',
  'tracestate',
  'baggage',
]);

/** How the gateway talks to one service. */
export interface HttpUpstreamOptions {
  /** `http.secret`: signs every forwarded request; undefined only in insecure mode. */
  secret: string | undefined;
  /** Connections kept to the service (`http.upstream.connections`). */
  connections: number;
  /** Requests that may wait for one of them (`http.upstream.queue`); beyond, 503 at once. */
  queue: number;
  /** Requests a connection carries before it is replaced (`http.upstream.maxrequests`); 0 is no limit. */
  maxRequestsPerConnection: number;
  /** `http.timeouts.idle`: the longest wait for the service's answer head or its next body byte. */
  idleTimeoutMs: number;
  /** The largest answer head accepted from the service. */
  maxHeaderBytes: number;
}

/**
 * Forwards a /v2 request to a service over HTTP (split mode), streaming the body both ways with
 * keep-alive connections, and signing it so the service knows the gateway let it through.
 *
 * Spread over replicas: the service's URL is typically a connection balancer (a Kubernetes
 * Service) in front of several replicas, which sees connections, not requests. So requests take
 * the open connections in turn (not the first idle one, which would pin nearly everything to one
 * replica), and each connection is replaced after `maxRequestsPerConnection` requests, so that
 * even a sequential stream of requests, or connections all opened while one replica was
 * restarting, is spread again.
 *
 * Bounded: at most `connections + queue` requests are in flight per service (the rest get 503
 * `UNAVAILABLE` with `Retry-After`), the service's silence is bounded by the idle timeout, and a
 * client that goes away aborts its upstream request, so no connection is held for nobody.
 */
export class HttpUpstream implements V2Handler {
  private readonly logger = new Logger(HttpUpstream.name);
  private readonly origin: string;
  private readonly capacity: number;
  private readonly pool: Dispatcher;
  private inFlight = 0;

  constructor(
    baseUrl: string,
    private readonly options: HttpUpstreamOptions,
  ) {
    this.origin = new URL(baseUrl).origin;
    this.capacity = options.connections + options.queue;
    this.pool = new RoundRobinPool(this.origin, {
      connections: options.connections,
      // undici closes a connection after one request more than this; 1 is done per request below.
      maxRequestsPerClient: options.maxRequestsPerConnection > 1 ? options.maxRequestsPerConnection - 1 : undefined,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      maxHeaderSize: options.maxHeaderBytes,
      bodyTimeout: options.idleTimeoutMs,
    });
  }

  async handle(x: V2Exchange): Promise<void> {
    if (this.inFlight >= this.capacity) throw new UpstreamBusyError(this.origin);
    this.inFlight++;
    try {
      await this.forward(x);
    } finally {
      this.inFlight--;
    }
  }

  private async forward(x: V2Exchange): Promise<void> {
    const { req, res } = x;
    const headers = forwardedHeaders(req);
    const scope = encodeRequestScope(x.scope);
    headers[Headers.internalScope] = scope;
    // A request the sampler dropped has no client span to carry its context: its scope's (sampled
    // flag 0) goes as the header, so the service's sampler follows the decision instead of drawing.
    if (x.scope.traceparent && tracingActive() && untraced()) headers[Headers.traceparent] = x.scope.traceparent;
    const body = forwardedBody(req, headers);
    if (this.options.secret) {
      const chunked = body !== undefined && headers['content-length'] === undefined;
      headers[Headers.internalAuth] = signInternalRequest(this.options.secret, signedPartsOf(req.method, req.originalUrl, scope, headers, chunked));
    }

    // The client going away (its connection closed, while it was still sending or waiting for the
    // answer) aborts the upstream request: out of the queue, or its connection closed. The
    // response's 'close' says so in every case; the request's 'close' does not: undici emits it
    // too, when it drops the body of an upstream request that failed, and that client is still
    // there, waiting for its 503.
    const abort = new AbortController();
    const onResponseClose = () => res.writableFinished || abort.abort();
    res.once('close', onResponseClose);
    try {
      let upstream: Dispatcher.ResponseData;
      try {
        upstream = await this.pool.request({
          path: req.originalUrl,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          // undici streams any async iterable (the chunked relay); its types list only Node streams.
          body: body as IncomingMessage | undefined,
          signal: abort.signal,
          reset: this.options.maxRequestsPerConnection === 1 ? true : undefined,
          // undici starts this clock when the request goes out and restarts it only when the
          // socket pushes back, so a slow client's long upload would be cut mid-body. With a
          // body, the gateway's own idle timeout on the client's connection bounds the wait.
          headersTimeout: body ? 0 : this.options.idleTimeoutMs,
        });
      } catch (e) {
        if (abort.signal.aborted || res.destroyed) return; // the client went away; nothing to answer
        this.logger.warn(`upstream ${this.origin} failed: ${(e as Error).message}`);
        throw new UnavailableError('upstream service unavailable', { upstream: this.origin });
      }
      res.status(upstream.statusCode);
      // The service answered before it read the whole body (an error found early): the client's
      // unread bytes are still on its connection, so close that after this answer.
      if (!req.complete) res.setHeader('Connection', 'close');
      for (const [k, v] of Object.entries(upstream.headers)) {
        if (v !== undefined && !HOP_BY_HOP.has(k)) res.setHeader(k, v);
      }
      try {
        await relayBody(upstream.body, res);
      } catch (e) {
        // Headers are out: the only way to tell the client is to cut its connection.
        if (!abort.signal.aborted) this.logger.warn(`answer from ${this.origin} cut short: ${(e as Error).message}`);
        res.destroy();
      }
    } finally {
      res.off('close', onResponseClose);
    }
  }
}

/** The client's end-to-end headers (no hop-by-hop, no internal ones) plus `X-Forwarded-Host`. */
function forwardedHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith(Headers.internalPrefix)) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  return headers;
}

/**
 * The body to forward, framed exactly as signed: with its length when the client gave one (not
 * 0), else chunked; none for GET, HEAD or an empty body (its `Content-Length` header dropped, so
 * undici sends `0` where the method expects a body and nothing otherwise). A chunked body goes as
 * an iterable: undici would measure a stream that already ended and send a length instead.
 */
function forwardedBody(req: IncomingMessage, headers: Record<string, string>): IncomingMessage | AsyncIterable<Buffer> | undefined {
  const length = headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (req.method === 'GET' || req.method === 'HEAD' || (!chunked && (length === undefined || length === '0'))) {
    delete headers['content-length'];
    return undefined;
  }
  return chunked ? relay(req) : req;
}

async function* relay(req: IncomingMessage): AsyncGenerator<Buffer> {
  for await (const chunk of req) yield chunk as Buffer;
}

/**
 * How much of the service's answer may wait on the client's connection before the upstream
 * connection is paused: a few socket reads' worth, bounded per request.
 */
export const RELAY_BUFFER_BYTES = 1024 * 1024;

/**
 * Copies the service's answer body to the client and ends it, as `pipeline(body, res)` does, but
 * pauses the upstream only once RELAY_BUFFER_BYTES wait on the client's connection: a pipe pauses
 * as soon as `write()` returns false (past the socket's 16 KiB high-water mark), so every 64 KiB
 * read from the service paused and resumed its connection. The chunks of one event-loop turn are
 * written together (corked), one writev instead of a write per socket read. Rejects (destroying
 * the other side) when either side fails or closes first.
 */
export function relayBody(body: Readable, res: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    // The chunks of one turn (a socket read hands over up to 64 KiB, and one turn may bring
    // several) go out in one writev: corked at the first, uncorked after the turn's I/O.
    let uncorkTimer: NodeJS.Immediate | undefined;
    const uncork = () => {
      if (!uncorkTimer) return;
      clearImmediate(uncorkTimer);
      uncorkTimer = undefined;
      res.uncork();
    };
    const onData = (chunk: Buffer) => {
      if (!uncorkTimer) {
        res.cork();
        uncorkTimer = setImmediate(uncork);
      }
      if (!res.write(chunk) && res.writableLength >= RELAY_BUFFER_BYTES) body.pause();
    };
    const onDrain = () => body.resume();
    body.on('data', onData);
    res.on('drain', onDrain);
    let settled = false;
    const settle = (error?: Error | null) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      res.off('drain', onDrain);
      uncork();
      stopBody();
      stopRes();
      if (error) {
        body.destroy();
        res.destroy();
        reject(error);
      } else resolve();
    };
    const stopBody = finished(body, (error) => {
      if (error) return settle(error);
      uncork();
      res.end();
    });
    const stopRes = finished(res, (error) => settle(error));
  });
}
