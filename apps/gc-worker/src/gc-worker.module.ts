import { Module } from '@nestjs/common';
import { GarbageCollector } from './gc/garbage-collector.service';
import { GcAdminController } from './gc/gc-admin.controller';
import { UploadPurgeService } from './uploads/upload-purge.service';

/** Garbage collection: online GC of blobs, links and manifests from the review queues, its admin API, and the purging of stale uploads. */
@Module({ providers: [UploadPurgeService, GarbageCollector], controllers: [GcAdminController], exports: [UploadPurgeService, GarbageCollector] })
export class GcWorkerModule {}
