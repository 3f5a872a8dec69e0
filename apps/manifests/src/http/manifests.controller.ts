import { All, Controller, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { InternalAuthService, serveForwarded } from '@lading/nest-common';
import { ManifestsHandler } from './manifests.handler';

/** The manifests process's own /v2 endpoint (split mode): requests forwarded by the gateway. */
@Controller()
export class ManifestsController {
  constructor(
    private readonly handler: ManifestsHandler,
    private readonly auth: InternalAuthService,
  ) {}

  @All(['v2', 'v2/*path'])
  async serve(@Req() req: Request, @Res() res: Response): Promise<void> {
    await serveForwarded('manifests', this.handler, this.auth, req, res);
  }
}
