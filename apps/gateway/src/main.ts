import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { httpServerLimits, type LadingConfig, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { GatewayModule } from './gateway.module';

@Module({})
class GatewayAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return { module: GatewayAppModule, imports: [GatewayModule.split(config)] };
  }
}

/** Starts the gateway on its own (split mode) on `http.addr`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(GatewayAppModule.forRoot(config), {
    addr: config.http.addr,
    log: config.log,
    debug: config.http.debug,
    limits: httpServerLimits(config.http),
  });
}

runIfEntryPoint(module, main);
