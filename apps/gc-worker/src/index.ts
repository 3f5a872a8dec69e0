export { GcWorkerModule } from './gc-worker.module';
export { UploadPurgeService } from './uploads/upload-purge.service';
export { GarbageCollector, GC_ACTOR, GC_BATCH, type GcBatchResult, type GcCounters, type GcProgress } from './gc/garbage-collector.service';
export { summarize, type GcRunSummary } from './gc/gc-admin.controller';
export { main as startGcWorker } from './main';
