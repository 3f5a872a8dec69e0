import { All, Controller, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Headers, RouteNotFoundError, UnsupportedError, parseV2Path, resolveOperation } from '@lading/contracts';
import { buildRequestScope, nameServerSpan, replyJson, toExchange, traceV2Request, type V2Handler } from '@lading/nest-common';
import { BLOB_UPLOAD_UPSTREAM, MANIFESTS_UPSTREAM } from '../upstream/upstream.port';

/**
 * The public /v2 surface: resolves the route and its operation from the one table, builds the
 * request scope (once per request; policy — auth, tenancy, limits — joins here as it arrives) and
 * hands the request to the service that owns it.
 */
@Controller()
export class GatewayController {
  constructor(
    @Inject(BLOB_UPLOAD_UPSTREAM) private readonly blobUpload: V2Handler,
    @Inject(MANIFESTS_UPSTREAM) private readonly manifests: V2Handler,
  ) {}

  @All(['v2', 'v2/*path'])
  async serve(@Req() req: Request, @Res() res: Response): Promise<void> {
    // Internal headers are the gateway's to write: a client's are dropped before anything reads them.
    for (const name of Object.keys(req.headers)) if (name.startsWith(Headers.internalPrefix)) delete req.headers[name];
    const path = req.originalUrl.split('?')[0];
    const route = parseV2Path(path);
    if (!route) throw new RouteNotFoundError(path);
    nameServerSpan(route);
    const operation = resolveOperation(route, req.method);
    if (!operation) {
      if (route.kind === 'base') throw new RouteNotFoundError(path);
      throw new UnsupportedError(`${req.method} is not supported here`);
    }
    const scope = buildRequestScope(route, operation, req);
    res.setHeader('X-Request-Id', scope.requestId);
    if (operation.service === 'gateway') return replyJson(res, 200, {});
    const upstream = operation.service === 'blob-upload' ? this.blobUpload : this.manifests;
    const x = toExchange(route, operation, scope, req, res);
    await traceV2Request(x, () => upstream.handle(x));
  }
}
