export { GcWorkerModule } from './gc-worker.module';
export { UploadPurgeService } from './uploads/upload-purge.service';
export { main as startGcWorker } from './main';
