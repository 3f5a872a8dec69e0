import { DynamicModule, Module } from '@nestjs/common';
import { BlobUploadHandler, BlobUploadModule } from '@lading/app-blob-upload';
import { GatewayModule } from '@lading/app-gateway';
import { GcWorkerModule } from '@lading/app-gc-worker';
import { ManifestsHandler, ManifestsModule } from '@lading/app-manifests';
import { NotificationsModule } from '@lading/app-notifications';
import { LadingCoreModule, type LadingConfig } from '@lading/nest-common';

/**
 * The whole registry in one process: the same modules as the split apps, with the gateway calling
 * the services' handlers in process instead of over HTTP.
 */
@Module({})
export class EmbeddedRegistryModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: EmbeddedRegistryModule,
      imports: [
        LadingCoreModule.forRoot(config),
        GatewayModule.embedded({
          imports: [BlobUploadModule, ManifestsModule],
          blobUpload: BlobUploadHandler,
          manifests: ManifestsHandler,
        }),
        NotificationsModule.forRoot({ readinessFollowsBus: false }),
        GcWorkerModule,
      ],
    };
  }
}
