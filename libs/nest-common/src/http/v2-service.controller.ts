import type { Request, Response } from 'express';
import {
  Headers,
  RouteNotFoundError,
  UnauthorizedError,
  UnsupportedError,
  decodeRequestScope,
  parseV2Path,
  repositoryOf,
  resolveOperation,
  type RequestScope,
  type V2Service,
} from '@lading/contracts';
import { verifyInternalRequest } from './internal-auth';
import { toExchange, type V2Handler } from './v2-exchange';

/**
 * What a service's own /v2 controller does in split mode: accept only requests the gateway
 * signed, only for routes this service owns, take the request scope the gateway built (and
 * signed) instead of building one, then hand them to the same handler the embedded gateway
 * calls in process.
 */
export async function serveForwarded(
  service: V2Service,
  handler: V2Handler,
  secret: string | undefined,
  req: Request,
  res: Response,
): Promise<void> {
  const scopeHeader = req.headers[Headers.internalScope];
  const encoded = typeof scopeHeader === 'string' ? scopeHeader : '';
  if (secret) {
    const sig = req.headers[Headers.internalAuth];
    const ok = verifyInternalRequest(secret, typeof sig === 'string' ? sig : undefined, {
      method: req.method,
      url: req.originalUrl,
      scope: encoded,
    });
    if (!ok) throw new UnauthorizedError('requests must come through the gateway');
  }
  const path = req.originalUrl.split('?')[0];
  const route = parseV2Path(path);
  if (!route) throw new RouteNotFoundError(path);
  const operation = resolveOperation(route, req.method);
  if (!operation) throw new UnsupportedError(`${req.method} is not supported here`);
  if (operation.service !== service) throw new RouteNotFoundError(path);
  let scope: RequestScope;
  try {
    scope = decodeRequestScope(encoded);
  } catch {
    throw new UnauthorizedError('requests must come through the gateway');
  }
  if (scope.operation !== operation.name || scope.repository !== (repositoryOf(route) ?? null)) {
    throw new UnauthorizedError('the request scope does not match the request');
  }
  await handler.handle(toExchange(route, operation, scope, req, res));
}
