import { Controller, Get, Inject, Optional, Res } from '@nestjs/common';
import type { Response } from 'express';
import { MetadataDb } from '@lading/metadata-db';
import { HealthChecks } from './health.checks';

/**
 * Liveness (`/healthz/live`: the process answers, and the liveness checks modules added pass) and
 * readiness (`/healthz/ready`: its dependencies answer — the metadata database when the app has
 * one, and the readiness checks modules added). 200 when all pass, else 503; the body reports
 * every check either way.
 */
@Controller('healthz')
export class HealthController {
  constructor(
    @Optional() @Inject(MetadataDb) private readonly db?: MetadataDb,
    @Optional() @Inject(HealthChecks) private readonly added?: HealthChecks,
  ) {}

  @Get('live')
  async live(@Res() res: Response): Promise<void> {
    const outcome = await this.added?.run('live');
    const body = outcome && Object.keys(outcome.checks).length > 0 ? { checks: outcome.checks } : {};
    res.status(outcome?.ok === false ? 503 : 200).json({ status: outcome?.ok === false ? 'unavailable' : 'ok', ...body });
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const checks: Record<string, unknown> = {};
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
    const outcome = await this.added?.run('ready');
    if (outcome) {
      ok &&= outcome.ok;
      Object.assign(checks, outcome.checks);
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
