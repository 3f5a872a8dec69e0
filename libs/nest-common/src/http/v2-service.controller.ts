import type { Request, Response } from 'express';
import { Headers, RouteNotFoundError, UnauthorizedError, parseV2Path, serviceOf, type V2Service } from '@lading/contracts';
import { verifyInternalRequest } from './internal-auth';
import { toExchange, type V2Handler } from './v2-exchange';

/**
 * What a service's own /v2 controller does in split mode: accept only requests the gateway
 * signed (when a shared secret is configured), only for routes this service owns, then hand them
 * to the same handler the embedded gateway calls in process.
 */
export async function serveForwarded(
  service: V2Service,
  handler: V2Handler,
  secret: string | undefined,
  req: Request,
  res: Response,
): Promise<void> {
  if (secret) {
    const principal = (req.headers['x-lading-principal'] as string | undefined) ?? '';
    const ok = verifyInternalRequest(secret, req.headers[Headers.internalAuth] as string | undefined, req.method, req.originalUrl, principal);
    if (!ok) throw new UnauthorizedError('requests must come through the gateway');
  }
  const path = req.originalUrl.split('?')[0];
  const route = parseV2Path(path);
  if (!route || serviceOf(route) !== service) throw new RouteNotFoundError(path);
  await handler.handle(toExchange(route, req, res));
}
