import { join } from 'node:path';
import { Client } from 'pg';
import {
  hostileSeed,
  itChecksHostileRun,
  registryAlive,
  runHostileSuite,
  type HostileRun,
} from '@lading/testing';
import { startSplit, type SplitStack } from '../support/registry-processes';
import { expectAllHealthy } from '../support/robustness-stack';

// LADING_HOSTILE_SEED=<n> reruns another seed; LADING_HOSTILE_REPORT=<file> keeps the full report.
describe('split mode on PostgreSQL: a seeded hostile-input suite', () => {
  let stack: SplitStack;
  let db: Client;
  let run: HostileRun;

  beforeAll(async () => {
    stack = await startSplit();
    db = new Client({ connectionString: stack.databaseUrl });
    await db.connect();
    run = await runHostileSuite({
      baseUrl: stack.url,
      sql: async (q) => (await db.query(q)).rows,
      storageDir: join(stack.dataDir, 'storage'),
      seed: hostileSeed(),
    });
  });
  afterAll(async () => {
    await db?.end();
    await stack?.stop();
  });

  itChecksHostileRun(() => run, 'split');

  it('keeps every process alive', async () => {
    expect(await registryAlive(stack.url)).toBe(true);
    await expectAllHealthy(Object.values(stack.apps));
  });
});
