import { pipeline } from 'node:stream/promises';
import { Logger } from '@nestjs/common';
import { Agent, type Dispatcher } from 'undici';
import { Headers, UnavailableError, encodeRequestScope } from '@lading/contracts';
import { signInternalRequest, type V2Exchange, type V2Handler } from '@lading/nest-common';

/**
 * Headers that belong to one connection, not to the request: never forwarded. `expect` is one of
 * them here: Node's server already answered `100 Continue` to the client, and undici refuses a
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
]);

/**
 * Forwards a /v2 request to a service over HTTP (split mode), streaming the body both ways with
 * keep-alive connections, and signing it so the service knows the gateway let it through.
 */
export class HttpUpstream implements V2Handler {
  private readonly logger = new Logger(HttpUpstream.name);
  private readonly origin: string;

  constructor(
    baseUrl: string,
    private readonly secret: string | undefined,
    private readonly agent: Dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 }),
  ) {
    this.origin = new URL(baseUrl).origin;
  }

  async handle(x: V2Exchange): Promise<void> {
    const { req, res } = x;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith(Headers.internalPrefix)) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
    const scope = encodeRequestScope(x.scope);
    headers[Headers.internalScope] = scope;
    if (this.secret) {
      headers[Headers.internalAuth] = signInternalRequest(this.secret, { method: req.method, url: req.originalUrl, scope });
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await this.agent.request({
        origin: this.origin,
        path: req.originalUrl,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: hasBody && req.method !== 'GET' && req.method !== 'HEAD' ? req : undefined,
      });
    } catch (e) {
      if (res.destroyed) return; // the client went away; nothing to answer
      this.logger.warn(`upstream ${this.origin} failed: ${(e as Error).message}`);
      throw new UnavailableError('upstream service unavailable', { upstream: this.origin });
    }
    res.status(upstream.statusCode);
    // The service answered before it read the whole body (an error found early): the client's
    // unread bytes are still on its connection, so close that after this answer.
    if (!req.complete && hasBody) res.setHeader('Connection', 'close');
    for (const [k, v] of Object.entries(upstream.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) res.setHeader(k, v);
    }
    await pipeline(upstream.body, res);
  }
}
