export { BlobUploadModule } from './blob-upload.module';
export { BlobUploadAppModule } from './app.module';
export { BlobUploadHandler } from './http/blob-upload.handler';
export { UploadService } from './uploads/upload.service';
export { main as startBlobUpload } from './main';
