import { Controller, Get, Inject, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MetadataDb } from '@lading/metadata-db';
import { authorizeAdmin, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { addMediaTypes, GarbageCollector, type GcBatchResult } from './garbage-collector.service';

/** The sum of a run's batches, as `lading gc run` prints it. */
export interface GcRunSummary {
  dryRun: boolean;
  batches: number;
  reviewed: number;
  deleted: number;
  bytes: number;
  postponed: number;
  byQueue: Record<string, { reviewed: number; deleted: number; bytes: number }>;
  byMediaType: Record<string, { rows: number; bytes: number }>;
}

/** Sums batches into a run summary. */
export function summarize(batches: readonly GcBatchResult[], dryRun: boolean): GcRunSummary {
  const s: GcRunSummary = { dryRun, batches: batches.length, reviewed: 0, deleted: 0, bytes: 0, postponed: 0, byQueue: {}, byMediaType: {} };
  for (const b of batches) {
    s.reviewed += b.reviewed;
    s.deleted += b.deleted;
    s.bytes += b.bytes;
    s.postponed += b.postponed;
    const q = (s.byQueue[b.queue] ??= { reviewed: 0, deleted: 0, bytes: 0 });
    q.reviewed += b.reviewed;
    q.deleted += b.deleted;
    q.bytes += b.bytes;
    addMediaTypes(s.byMediaType, b.byMediaType);
  }
  return s;
}

/**
 * The GC admin API, on gc-worker and on the embedded process (never routed by the public `/v2`
 * gateway; the admin token of `http.secret`): `GET /admin/gc/status` — queue depths, the oldest
 * due item, the last runs, this process's counters; `POST /admin/gc/run[?dryrun=true]` — one
 * pass now, answered as NDJSON: a line per batch as it completes, then `{"summary":…}`.
 */
@Controller('admin/gc')
export class GcAdminController {
  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(GarbageCollector) private readonly gc: GarbageCollector,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {}

  @Get('status')
  async status(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!authorizeAdmin(req, res, this.config.http.secret)) return;
    const status = await this.db.read.gc.status();
    const { disabled, deleteuntagged, deleteorphanreferrers } = this.config.gc;
    res.json({ ...status, settings: { disabled, deleteuntagged, deleteorphanreferrers }, counters: this.gc.stats() });
  }

  @Post('run')
  async run(@Req() req: Request, @Res() res: Response, @Query('dryrun') dryrun?: string): Promise<void> {
    if (!authorizeAdmin(req, res, this.config.http.secret)) return;
    if (dryrun !== undefined && dryrun !== 'true' && dryrun !== 'false') {
      res.status(400).json({ error: 'dryrun must be true or false' });
      return;
    }
    const dryRun = dryrun === 'true';
    res.status(200).type('application/x-ndjson');
    res.flushHeaders();
    try {
      const batches = await this.gc.runOnce({ dryRun, onProgress: (b) => res.write(`${JSON.stringify({ batch: b })}\n`) });
      res.end(`${JSON.stringify({ summary: summarize(batches, dryRun) })}\n`);
    } catch (e) {
      res.end(`${JSON.stringify({ error: (e as Error).message })}\n`);
    }
  }
}
