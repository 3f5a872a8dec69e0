import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { startBlobUpload } from '@lading/app-blob-upload';
import { startGateway } from '@lading/app-gateway';
import { GcWorkerModule, UploadPurgeService, startGcWorker } from '@lading/app-gc-worker';
import { startManifests } from '@lading/app-manifests';
import { startNotifications } from '@lading/app-notifications';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { httpServerLimits, LadingCoreModule, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { Module } from '@nestjs/common';
import { EmbeddedRegistryModule } from './embedded.module';
import { EVENTS_USAGE, eventsCommand } from './events.command';
import { GC_USAGE, gcCommand } from './gc.command';
import { RECONCILE_USAGE, ReconcileRefusedError, reconcileCommand } from './gc/reconcile.command';

const APPS: Record<string, () => Promise<void>> = {
  gateway: startGateway,
  'blob-upload': startBlobUpload,
  manifests: startManifests,
  notifications: startNotifications,
  'gc-worker': startGcWorker,
};

const USAGE = `usage: lading <command>

  serve                 run the whole registry in one process (embedded default)
  serve <app>           run one app of the split deployment: ${Object.keys(APPS).join(', ')}
  migrate               bring the metadata database schema up to date
  config check          validate the configuration and print it
  gc uploads [--dry-run]  purge stale upload sessions and orphaned upload bytes now
${GC_USAGE}
${RECONCILE_USAGE}
${EVENTS_USAGE}

Configuration: LADING_CONFIG names a YAML file; LADING_* variables override it
(LADING_HTTP_ADDR, LADING_DATA_DIR, LADING_DATABASE_URL, LADING_STORAGE_DELETE_ENABLED, ...).`;

/** Runs the `lading` command line. */
export async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest[0]);
    case 'migrate': {
      const config = loadConfig();
      const db = new MetadataDb(await openMetadataDb({ url: config.database.url, pgliteDir: join(config.datadir, 'db') }));
      console.log(`schema up to date: ${(await db.appliedMigrations()).join(', ')}`);
      await db.close();
      return;
    }
    case 'config':
      if (rest[0] === 'check') {
        console.log(JSON.stringify(redact(loadConfig()), null, 2));
        console.error('configuration is valid');
        return;
      }
      break;
    case 'gc':
      if (rest[0] === 'uploads') return gcUploads(rest.includes('--dry-run'));
      if (rest[0] === 'reconcile') return gcReconcile(rest.slice(1));
      if (await gcCommand(rest, loadConfig())) return;
      break;
    case 'events':
      if (await eventsCommand(rest, loadConfig())) return;
      break;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
  }
  console.error(USAGE);
  process.exitCode = 2;
}

async function serve(app: string | undefined): Promise<void> {
  if (app) {
    const start = APPS[app];
    if (!start) throw new Error(`unknown app "${app}"; one of: ${Object.keys(APPS).join(', ')}`);
    return start();
  }
  const config = loadConfig();
  if (!config.database.url && !existsSync(join(config.datadir, 'db'))) createEmbeddedDatabase();
  await startHttpApp(EmbeddedRegistryModule.forRoot(config), {
    addr: config.http.addr,
    log: config.log,
    debug: config.http.debug,
    limits: httpServerLimits(config.http),
  });
}

/**
 * Creating a PGlite database runs initdb in WebAssembly, whose memory (about 800 MB) the process
 * keeps for good; so a first start creates it in a short-lived child and then opens it here.
 */
function createEmbeddedDatabase(): void {
  const script = process.argv[1];
  if (!script || basename(script) !== 'lading.js') return;
  const r = spawnSync(process.execPath, [script, 'migrate'], { stdio: ['ignore', 'ignore', 'inherit'], env: process.env });
  if (r.status !== 0) throw new Error(`creating the embedded database failed (exit ${r.status})`);
}

async function gcUploads(dryRun: boolean): Promise<void> {
  // One pass now, no timer: a variant of the configuration, loaded as such (the loaded one is frozen).
  const config = loadConfig(undefined, {
    storage: { maintenance: { uploadpurging: { enabled: false, ...(dryRun ? { dryrun: true } : {}) } } },
    gc: { disabled: true },
  });
  @Module({ imports: [LadingCoreModule.forRoot(config), GcWorkerModule] })
  class GcOnceModule {}
  const ctx = await NestFactory.createApplicationContext(GcOnceModule, { logger: ['error', 'warn', 'log'] });
  try {
    const report = await ctx.get(UploadPurgeService).purge();
    console.log(`${dryRun ? 'would purge' : 'purged'}: ${report.sessions} stale sessions, ${report.orphans} orphaned uploads`);
  } finally {
    await ctx.close();
  }
}

async function gcReconcile(args: string[]): Promise<void> {
  try {
    process.exitCode = await reconcileCommand(args, loadConfig());
  } catch (e) {
    if (!(e instanceof ReconcileRefusedError)) throw e;
    console.error(e.message);
    process.exitCode = 1;
  }
}

function redact(config: ReturnType<typeof loadConfig>): unknown {
  return JSON.parse(
    JSON.stringify(config, (k, v) => (k === 'secret' ? '***' : k === 'url' && typeof v === 'string' ? v.replace(/\/\/[^@/]*@/, '//***@') : v)),
  );
}

runIfEntryPoint(module, () => run(process.argv.slice(2)));
