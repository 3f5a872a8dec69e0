import { randomUUID } from 'node:crypto';
import { All, Controller, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { RouteNotFoundError, parseV2Path, serviceOf } from '@lading/contracts';
import { replyJson, toExchange, type V2Handler } from '@lading/nest-common';
import { assertRepositoryName } from '@lading/reference';
import { BLOB_UPLOAD_UPSTREAM, MANIFESTS_UPSTREAM } from '../upstream/upstream.port';

/**
 * The public /v2 surface: resolves the route, applies policy (names today; auth, tenancy and
 * limits as they arrive) and hands the request to the service that owns it.
 */
@Controller()
export class GatewayController {
  constructor(
    @Inject(BLOB_UPLOAD_UPSTREAM) private readonly blobUpload: V2Handler,
    @Inject(MANIFESTS_UPSTREAM) private readonly manifests: V2Handler,
  ) {}

  @All(['v2', 'v2/*path'])
  async serve(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (typeof req.headers['x-request-id'] !== 'string') req.headers['x-request-id'] = randomUUID();
    res.setHeader('X-Request-Id', req.headers['x-request-id'] as string);
    const path = req.originalUrl.split('?')[0];
    const route = parseV2Path(path);
    if (!route) throw new RouteNotFoundError(path);
    if (route.kind === 'base') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new RouteNotFoundError(path);
      return replyJson(res, 200, {});
    }
    if ('name' in route) assertRepositoryName(route.name);
    const upstream = serviceOf(route) === 'blob-upload' ? this.blobUpload : this.manifests;
    await upstream.handle(toExchange(route, req, res));
  }
}
