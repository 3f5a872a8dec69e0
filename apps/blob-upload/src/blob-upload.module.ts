import { Module } from '@nestjs/common';
import { BlobService } from './blobs/blob.service';
import { BlobUploadHandler } from './http/blob-upload.handler';
import { HashStateCache } from './uploads/hash-state.cache';
import { UploadService } from './uploads/upload.service';

/**
 * The blob-upload bounded contexts (uploads, blobs) and their /v2 handler, without any HTTP
 * listener: the split app adds its controller, the embedded registry hands the handler to the
 * gateway. Needs LadingCoreModule (config, database, storage) in the app.
 */
@Module({
  providers: [HashStateCache, UploadService, BlobService, BlobUploadHandler],
  exports: [BlobUploadHandler, UploadService],
})
export class BlobUploadModule {}
