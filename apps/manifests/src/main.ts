import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { httpServerLimits, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { ManifestsAppModule } from './app.module';

/** Starts manifests on its own (split mode): `services.manifests.addr`, else `http.addr`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(ManifestsAppModule.forRoot(config), {
    addr: config.services.manifests.addr ?? config.http.addr,
    log: config.log,
    debug: config.http.debug,
    limits: httpServerLimits(config.http, 'forwarded'),
    behindGateway: true,
  });
}

runIfEntryPoint(module, main);
