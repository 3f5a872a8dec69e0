import 'reflect-metadata';
import { loadConfig, startHttpApp } from '@lading/nest-common';
import { BlobUploadAppModule } from './app.module';

/** Starts blob-upload on its own (split mode): `services.blobupload.addr`, else `http.addr`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(BlobUploadAppModule.forRoot(config), {
    addr: config.services.blobupload.addr ?? config.http.addr,
    logLevel: config.log.level,
  });
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
