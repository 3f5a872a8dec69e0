import 'reflect-metadata';
import { loadConfig, startHttpApp } from '@lading/nest-common';
import { ManifestsAppModule } from './app.module';

/** Starts manifests on its own (split mode): `services.manifests.addr`, else `http.addr`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(ManifestsAppModule.forRoot(config), {
    addr: config.services.manifests.addr ?? config.http.addr,
    logLevel: config.log.level,
  });
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
