import type { Request, Response } from 'express';
import {
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
import type { InternalAuthService } from './internal-auth.service';
import { forwardedParent, traceV2Request } from '../telemetry/v2-span';
import { toExchange, type V2Handler } from './v2-exchange';

/**
 * What a service's own /v2 controller does in split mode: accept only requests the gateway
 * signed (once: a replay is refused), only for routes this service owns, take the request scope
 * the gateway built (and signed) instead of building one, then hand them to the same handler the
 * embedded gateway calls in process, in the operation's span of the trace the scope names.
 */
export async function serveForwarded(
  service: V2Service,
  handler: V2Handler,
  auth: InternalAuthService,
  req: Request,
  res: Response,
): Promise<void> {
  const encoded = await auth.verify(req);
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
  const x = toExchange(route, operation, scope, req, res);
  await traceV2Request(x, () => handler.handle(x), forwardedParent(scope));
}
