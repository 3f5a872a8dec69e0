import { DynamicModule, Module } from '@nestjs/common';
import { HealthController, InternalAuthModule, LadingCoreModule, type LadingConfig } from '@lading/nest-common';
import { BlobUploadModule } from './blob-upload.module';
import { BlobUploadController } from './http/blob-upload.controller';

/** The blob-upload process in split mode. */
@Module({})
export class BlobUploadAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: BlobUploadAppModule,
      imports: [LadingCoreModule.forRoot(config), InternalAuthModule.forService(config, 'blob-upload'), BlobUploadModule],
      controllers: [HealthController, BlobUploadController],
    };
  }
}
