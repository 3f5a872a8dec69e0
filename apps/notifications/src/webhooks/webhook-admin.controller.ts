import { Controller, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MetadataDb } from '@lading/metadata-db';
import { adminToken, authorizeAdmin, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { WebhookDispatcher } from './webhook.service';

export { adminToken };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STATUSES = new Set(['pending', 'delivered', 'dead']);

/**
 * The webhook admin API on notifications (never routed by the public `/v2` gateway): endpoints
 * with their state and lag, deliveries and the delivery log, redelivery of one event or every
 * dead letter of an endpoint, pause and resume. Answers 401 without the admin token, 404 for an
 * endpoint that is not configured, 400 for a malformed id or filter.
 */
@Controller('admin/webhooks')
export class WebhookAdminController {
  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(WebhookDispatcher) private readonly dispatcher: WebhookDispatcher,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {}

  @Get('endpoints')
  async endpoints(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!this.authorized(req, res)) return;
    const states = await this.db.read.webhooks.endpointStates(this.dispatcher.endpoints.map((e) => e.name));
    const byName = new Map(states.map((s) => [s.name, s]));
    res.json({
      endpoints: this.dispatcher.endpoints.map((e) => ({ name: e.name, url: e.url, disabled: e.disabled, format: e.format, ...byName.get(e.name) })),
    });
  }

  @Get('deliveries')
  async deliveries(@Req() req: Request, @Res() res: Response, @Query('endpoint') endpoint?: string, @Query('status') status?: string, @Query('limit') limit?: string): Promise<void> {
    if (!this.authorized(req, res)) return;
    const n = limit === undefined ? 100 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) return void bad(res, 'limit must be an integer from 1 to 1000');
    if (status !== undefined && !STATUSES.has(status)) return void bad(res, 'status must be pending, delivered or dead');
    if (endpoint !== undefined && !this.known(endpoint, res)) return;
    res.json({ deliveries: await this.db.read.webhooks.listDeliveries({ endpoint, status, limit: n }) });
  }

  @Get('endpoints/:name/attempts')
  async attempts(@Req() req: Request, @Res() res: Response, @Param('name') name: string): Promise<void> {
    if (!this.authorized(req, res) || !this.known(name, res)) return;
    res.json({ attempts: await this.db.read.webhooks.listAttempts(name, 100) });
  }

  @Post('endpoints/:name/redeliver')
  async redeliverDead(@Req() req: Request, @Res() res: Response, @Param('name') name: string): Promise<void> {
    if (!this.authorized(req, res) || !this.known(name, res)) return;
    res.json({ redelivered: await this.db.read.webhooks.redeliver(name) });
  }

  @Post('endpoints/:name/deliveries/:id/redeliver')
  async redeliverOne(@Req() req: Request, @Res() res: Response, @Param('name') name: string, @Param('id') id: string): Promise<void> {
    if (!this.authorized(req, res) || !this.known(name, res)) return;
    if (!UUID.test(id)) return void bad(res, 'an event id is a lowercase uuid');
    const n = await this.db.read.webhooks.redeliver(name, id);
    if (n === 0) return void res.status(404).json({ error: `no delivered or dead event ${id} for endpoint ${name}` });
    res.json({ redelivered: n });
  }

  @Post('endpoints/:name/pause')
  async pause(@Req() req: Request, @Res() res: Response, @Param('name') name: string): Promise<void> {
    if (!this.authorized(req, res) || !this.known(name, res)) return;
    await this.db.read.webhooks.setPaused(name, true);
    res.json({ name, paused: true });
  }

  @Post('endpoints/:name/resume')
  async resume(@Req() req: Request, @Res() res: Response, @Param('name') name: string): Promise<void> {
    if (!this.authorized(req, res) || !this.known(name, res)) return;
    await this.db.read.webhooks.setPaused(name, false);
    res.json({ name, paused: false });
  }

  private authorized(req: Request, res: Response): boolean {
    return authorizeAdmin(req, res, this.config.http.secret);
  }

  private known(name: string, res: Response): boolean {
    if (this.dispatcher.endpoints.some((e) => e.name === name)) return true;
    res.status(404).json({ error: `no webhook endpoint named ${name}` });
    return false;
  }
}

function bad(res: Response, error: string): void {
  res.status(400).json({ error });
}
