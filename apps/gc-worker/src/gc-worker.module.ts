import { Module } from '@nestjs/common';
import { UploadPurgeService } from './uploads/upload-purge.service';

/** Garbage collection: today the purging of stale uploads; online blob/manifest GC comes next. */
@Module({ providers: [UploadPurgeService], exports: [UploadPurgeService] })
export class GcWorkerModule {}
