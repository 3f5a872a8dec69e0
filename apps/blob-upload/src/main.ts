import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { httpServerLimits, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { BlobUploadAppModule } from './app.module';

/** Starts blob-upload on its own (split mode): `services.blobupload.addr`, else `http.addr`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(BlobUploadAppModule.forRoot(config), {
    addr: config.services.blobupload.addr ?? config.http.addr,
    log: config.log,
    debug: config.http.debug,
    limits: httpServerLimits(config.http, 'forwarded'),
    behindGateway: true,
  });
}

runIfEntryPoint(module, main);
