import { Controller, Get, Inject, Optional, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource } from 'typeorm';

/**
 * Liveness (`/healthz/live`: the process answers) and readiness (`/healthz/ready`: its
 * dependencies answer — today the metadata database, when the app has one).
 */
@Controller('healthz')
export class HealthController {
  constructor(@Optional() @Inject(DataSource) private readonly ds?: DataSource) {}

  @Get('live')
  live(): { status: string } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const checks: Record<string, string> = {};
    let ok = true;
    if (this.ds) {
      try {
        await this.ds.query('SELECT 1');
        checks.database = 'ok';
      } catch (e) {
        ok = false;
        checks.database = (e as Error).message;
      }
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
