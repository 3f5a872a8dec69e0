import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { httpServerLimits, loadConfig, startHttpApp } from '@lading/nest-common';
import { EmbeddedRegistryModule } from './embedded.module';

/** A registry started in this process for a test. */
export interface TestRegistry {
  url: string;
  dataDir: string;
  app: INestApplication;
  /** Stops the registry; `keepData` leaves the data folder for a restart. */
  close(keepData?: boolean): Promise<void>;
}

/**
 * Starts the embedded registry on a free loopback port with its data in a new temp folder (or
 * `dataDir`), configured by `env` on top of that (LADING_* keys, as in production); `beforeListen`
 * runs before any provider starts (to subscribe to the event bus first).
 */
export async function startTestRegistry(
  env: Record<string, string> = {},
  dataDir?: string,
  beforeListen?: (app: INestApplication) => void | Promise<void>,
): Promise<TestRegistry> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'lading-test-'));
  const config = loadConfig({ LADING_DATA_DIR: dir, LADING_HTTP_ADDR: '127.0.0.1:0', LADING_LOG_LEVEL: 'error', ...env });
  const app = await startHttpApp(EmbeddedRegistryModule.forRoot(config), {
    addr: config.http.addr,
    log: { level: 'error' },
    debug: config.http.debug,
    limits: httpServerLimits(config.http),
    beforeListen,
  });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    url,
    dataDir: dir,
    app,
    async close(keepData = false) {
      await app.close();
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}
