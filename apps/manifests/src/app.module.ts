import { DynamicModule, Module } from '@nestjs/common';
import { HealthController, InternalAuthModule, LadingCoreModule, type LadingConfig } from '@lading/nest-common';
import { ManifestsController } from './http/manifests.controller';
import { ManifestsModule } from './manifests.module';

/** The manifests process in split mode. */
@Module({})
export class ManifestsAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: ManifestsAppModule,
      imports: [LadingCoreModule.forRoot(config), InternalAuthModule.forService(config, 'manifests'), ManifestsModule],
      controllers: [HealthController, ManifestsController],
    };
  }
}
