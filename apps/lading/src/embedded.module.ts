import { DynamicModule, Module } from '@nestjs/common';
import { BlobUploadHandler, BlobUploadModule } from '@lading/app-blob-upload';
import { GatewayModule } from '@lading/app-gateway';
import { GcWorkerModule } from '@lading/app-gc-worker';
import { ManifestsHandler, ManifestsModule } from '@lading/app-manifests';
import { NotificationsModule, WebhookAdminController } from '@lading/app-notifications';
import { LadingCoreModule, type LadingConfig } from '@lading/nest-common';

/**
 * The whole registry in one process: the same modules as the split apps, with the gateway calling
 * the services' handlers in process instead of over HTTP. The admin APIs of the split apps
 * (`/admin/webhooks`, `/admin/gc`) answer on its port, behind the admin token.
 */
@Module({})
export class EmbeddedRegistryModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: EmbeddedRegistryModule,
      controllers: [WebhookAdminController],
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
