import { join } from 'node:path';
import { DataSource } from 'typeorm';
import {
  hostileSeed,
  itChecksHostileRun,
  registryAlive,
  runHostileSuite,
  type HostileRun,
} from '@lading/testing';
import { startTestRegistry, type TestRegistry } from './embedded.harness';

jest.setTimeout(300_000);

// LADING_HOSTILE_SEED=<n> reruns another seed; LADING_HOSTILE_REPORT=<file> keeps the full report.
describe('embedded registry: a seeded hostile-input suite', () => {
  let reg: TestRegistry;
  let run: HostileRun;

  beforeAll(async () => {
    reg = await startTestRegistry();
    const ds = reg.app.get(DataSource);
    run = await runHostileSuite({
      baseUrl: reg.url,
      sql: (q) => ds.query(q),
      storageDir: join(reg.dataDir, 'storage'),
      seed: hostileSeed(),
    });
  });
  afterAll(async () => {
    await reg?.close();
  });

  itChecksHostileRun(() => run, 'embedded');

  it('is still alive afterwards', async () => {
    expect(await registryAlive(reg.url)).toBe(true);
  });
});
