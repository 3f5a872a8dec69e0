import { Controller, Get, Inject, Optional, Res } from '@nestjs/common';
import type { Response } from 'express';
import { MetadataDb } from '@lading/metadata-db';

/**
 * Liveness (`/healthz/live`: the process answers) and readiness (`/healthz/ready`: its
 * dependencies answer — today the metadata database, when the app has one).
 */
@Controller('healthz')
export class HealthController {
  constructor(@Optional() @Inject(MetadataDb) private readonly db?: MetadataDb) {}

  @Get('live')
  live(): { status: string } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const checks: Record<string, string> = {};
    let ok = true;
    if (this.db) {
      try {
        await this.db.ping();
        checks.database = 'ok';
      } catch (e) {
        ok = false;
        checks.database = (e as Error).message;
      }
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
