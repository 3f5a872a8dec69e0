import type { Request, Response } from 'express';
import {
  ANONYMOUS,
  Headers,
  parseTraceparent,
  repositoryOf,
  type RequestScope,
  type V2Operation,
  type V2Route,
} from '@lading/contracts';
import { assertRepositoryName } from '@lading/reference';
import { requestIdOf } from '../logging/logging';
import { requestTraceparent } from '../telemetry/v2-span';

/** One /v2 request on its way through a handler: the route, its operation, the scope and the raw streams. */
export interface V2Exchange {
  route: V2Route;
  /** The row of the operation table this request resolved to. */
  operation: V2Operation;
  /** Built once by the gateway; the first argument of every service call. */
  scope: RequestScope;
  req: Request;
  res: Response;
  /** The query string, parsed. */
  query: URLSearchParams;
}

/** Serves the /v2 routes a service owns. The gateway calls it in process, or over HTTP in split mode. */
export interface V2Handler {
  handle(exchange: V2Exchange): Promise<void>;
}

/**
 * Builds the request scope at the gateway, the one place that does: validates the repository name
 * (NAME_INVALID) — the only validation of it in the request's life — and takes the request id
 * (see {@link requestIdOf}: the one its log lines carry) and the trace context: this request's
 * server span when tracing (a child of the client's `traceparent`, if it sent one), else the
 * client's `traceparent` as it came.
 */
export function buildRequestScope(route: V2Route, operation: V2Operation, req: Request): RequestScope {
  const repository = repositoryOf(route) ?? null;
  if (repository !== null) assertRepositoryName(repository);
  const requestId = requestIdOf(req);
  const traceparent = req.headers[Headers.traceparent];
  const clientTraceparent = parseTraceparent(typeof traceparent === 'string' ? traceparent : undefined);
  return Object.freeze({
    requestId,
    principal: ANONYMOUS,
    tenant: null,
    repository,
    operation: operation.name,
    action: operation.action,
    traceparent: requestTraceparent(req) ?? clientTraceparent,
    client: Object.freeze({
      addr: clientAddr(req),
      host: req.headers.host,
      method: req.method,
      useragent: req.headers['user-agent'],
    }),
  });
}

/** The client's `ip:port` as the reference registry's events write it (`[v6]:port` for IPv6). */
function clientAddr(req: Request): string | undefined {
  const ip = req.socket?.remoteAddress;
  if (!ip) return undefined;
  return `${ip.includes(':') ? `[${ip}]` : ip}:${req.socket.remotePort}`;
}

/** Builds the exchange for a request whose scope is known (the gateway's, or the verified one a service received). */
export function toExchange(route: V2Route, operation: V2Operation, scope: RequestScope, req: Request, res: Response): V2Exchange {
  const q = req.originalUrl.indexOf('?');
  const query = new URLSearchParams(q >= 0 ? req.originalUrl.slice(q + 1) : '');
  return { route, operation, scope, req, res, query };
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

/** The absolute URL of `path` as the client sees the registry (the Host it addressed, from the scope). */
export function externalUrl(x: V2Exchange, path: string): string {
  const proto = (x.req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  const host = x.scope.client.host ?? 'localhost';
  return `${proto}://${host}${path}`;
}
