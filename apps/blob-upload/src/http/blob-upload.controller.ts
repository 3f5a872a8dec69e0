import { All, Controller, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { InternalAuthService, serveForwarded } from '@lading/nest-common';
import { BlobUploadHandler } from './blob-upload.handler';

/** The blob-upload process's own /v2 endpoint (split mode): requests forwarded by the gateway. */
@Controller()
export class BlobUploadController {
  constructor(
    private readonly handler: BlobUploadHandler,
    private readonly auth: InternalAuthService,
  ) {}

  @All(['v2', 'v2/*path'])
  async serve(@Req() req: Request, @Res() res: Response): Promise<void> {
    await serveForwarded('blob-upload', this.handler, this.auth, req, res);
  }
}
