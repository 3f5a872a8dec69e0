import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { MetadataDb } from '@lading/metadata-db';
import { BLOB_STORAGE, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import type { BlobStorage } from '@lading/storage';

/** What one purge pass removed. */
export interface PurgeReport {
  sessions: number;
  orphans: number;
}

/**
 * Purges upload sessions untouched for longer than `storage.maintenance.uploadpurging.age`, with
 * their bytes, and upload bytes that have no session at all (a crash between creating the bytes
 * and the row, or a single-request upload cut off), on `…uploadpurging.interval`. A session's age
 * is judged by the database's clock, and a session whose writer holds its lease (an append is
 * streaming into it, however long it takes) is never stale.
 */
@Injectable()
export class UploadPurgeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UploadPurgeService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(BLOB_STORAGE) private readonly storage: BlobStorage,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {}

  onApplicationBootstrap(): void {
    const p = this.config.storage.maintenance.uploadpurging;
    if (!p.enabled) return;
    this.timer = setInterval(() => {
      this.purge().catch((e) => this.logger.error(`upload purge failed: ${(e as Error).message}`));
    }, p.interval);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass. `now` (for orphaned bytes, whose start the storage recorded) and `age` are injectable for tests. */
  async purge(now = new Date(), age = this.config.storage.maintenance.uploadpurging.age): Promise<PurgeReport> {
    const dryRun = this.config.storage.maintenance.uploadpurging.dryrun;
    const cutoff = new Date(now.getTime() - age);
    const report: PurgeReport = { sessions: 0, orphans: 0 };
    const uploads = this.db.read.uploads;
    for (;;) {
      const stale = await uploads.findStale(age, 500);
      if (stale.length === 0 || dryRun) {
        report.sessions += dryRun ? stale.length : 0;
        break;
      }
      for (const id of stale) {
        // Delete the row only if it is still stale, so an upload resumed meanwhile survives.
        if (await uploads.deleteIfStale(id, age)) {
          await this.storage.deleteUpload(id);
          report.sessions++;
        }
      }
    }
    for await (const upload of this.storage.listUploads()) {
      // Creation time as recorded by the creating process, not a file time (see UploadInfo). Without
      // a readable marker the creation was cut short: there is no time to wait for.
      if (upload.startedAt !== null && upload.startedAt >= cutoff) continue;
      if (await uploads.exists(upload.id)) continue;
      if (!dryRun) await this.storage.deleteUpload(upload.id);
      report.orphans++;
    }
    if (report.sessions + report.orphans > 0) {
      this.logger.log(`${dryRun ? 'would purge' : 'purged'} ${report.sessions} stale upload sessions and ${report.orphans} orphaned uploads`);
    }
    return report;
  }
}
