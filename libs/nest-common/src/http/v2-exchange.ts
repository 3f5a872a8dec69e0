import type { Request, Response } from 'express';
import type { RequestContext, V2Route } from '@lading/contracts';

/** One /v2 request on its way through a handler: the parsed route and the raw streams. */
export interface V2Exchange {
  route: V2Route;
  req: Request;
  res: Response;
  /** The query string, parsed. */
  query: URLSearchParams;
  ctx: RequestContext;
}

/** Serves the /v2 routes a service owns. The gateway calls it in process, or over HTTP in split mode. */
export interface V2Handler {
  handle(exchange: V2Exchange): Promise<void>;
}

/** Builds the exchange for a request (the gateway and each service's own controller do the same). */
export function toExchange(route: V2Route, req: Request, res: Response): V2Exchange {
  const q = req.originalUrl.indexOf('?');
  const query = new URLSearchParams(q >= 0 ? req.originalUrl.slice(q + 1) : '');
  const requestId = req.headers['x-request-id'];
  return {
    route,
    req,
    res,
    query,
    ctx: {
      id: typeof requestId === 'string' ? requestId : undefined,
      addr: req.socket?.remoteAddress,
      host: (req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host,
      method: req.method,
      useragent: req.headers['user-agent'],
    },
  };
}

/** Ends a response with optional headers and body (no body for HEAD). */
export function reply(res: Response, status: number, headers: Record<string, string | number> = {}, body?: Buffer | string): void {
  res.status(status);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body === undefined) {
    if (!('content-length' in lowerKeys(headers))) res.setHeader('Content-Length', 0);
    res.end();
    return;
  }
  if (!('content-length' in lowerKeys(headers))) res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Ends a response with a JSON body. */
export function replyJson(res: Response, status: number, value: unknown, headers: Record<string, string | number> = {}): void {
  reply(res, status, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, JSON.stringify(value));
}

function lowerKeys(h: Record<string, unknown>): Record<string, true> {
  const out: Record<string, true> = {};
  for (const k of Object.keys(h)) out[k.toLowerCase()] = true;
  return out;
}

/** The absolute URL of `path` as the client sees the registry (the gateway passes its Host on). */
export function externalUrl(x: V2Exchange, path: string): string {
  const proto = (x.req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  const host = (x.req.headers['x-forwarded-host'] as string | undefined) ?? x.req.headers.host ?? 'localhost';
  return `${proto}://${host}${path}`;
}
