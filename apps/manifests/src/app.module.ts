import { DynamicModule, Module } from '@nestjs/common';
import { HealthController, LadingCoreModule, type LadingConfig } from '@lading/nest-common';
import { ManifestsController } from './http/manifests.controller';
import { ManifestsModule } from './manifests.module';

/** The manifests process in split mode. */
@Module({})
export class ManifestsAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: ManifestsAppModule,
      imports: [LadingCoreModule.forRoot(config), ManifestsModule],
      controllers: [HealthController, ManifestsController],
    };
  }
}
