import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { HealthController, type LadingConfig, LadingCoreModule, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { GcWorkerModule } from './gc-worker.module';

@Module({})
class GcWorkerAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return { module: GcWorkerAppModule, imports: [LadingCoreModule.forRoot(config), GcWorkerModule], controllers: [HealthController] };
  }
}

/** Starts gc-worker on its own; it listens only for health checks (`services.gcworker.addr`). */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(GcWorkerAppModule.forRoot(config), {
    addr: config.services.gcworker.addr ?? '127.0.0.1:5004',
    log: config.log,
    debug: config.http.debug,
  });
}

runIfEntryPoint(module, main);
