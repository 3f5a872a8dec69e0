import { join } from 'node:path';
import { Client } from 'pg';
import {
  diffSnapshots,
  HOSTILE_REQUIRED_COVERAGE,
  hostileCoverage,
  hostileSeed,
  hostileVerdict,
  KNOWN_DEFECTS,
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

  it('sends at least 1000 invalid requests over every route and method', () => {
    expect(run.cases.length).toBeGreaterThanOrEqual(1000);
    const covered = hostileCoverage(run.cases);
    expect(HOSTILE_REQUIRED_COVERAGE.filter((op) => !covered[op])).toEqual([]);
    expect(run.report.cases).toBe(run.cases.length);
  });

  it('answers each with a 4xx OCI error: no 5xx, no hang, no other status (known defects aside)', () => {
    expect(hostileVerdict(run.report, KNOWN_DEFECTS, 'split')).toEqual([]);
  });

  it('keeps every process alive', async () => {
    expect(await registryAlive(stack.url)).toBe(true);
    await expectAllHealthy(Object.values(stack.apps));
  });

  it('changed nothing in the database or the storage', () => {
    expect(run.before.tables.manifests.rows).toBe(2);
    expect(run.before.tables.tags.rows).toBe(1);
    expect(run.before.tables.upload_sessions.rows).toBe(1);
    expect(diffSnapshots(run.before, run.after)).toEqual([]);
  });
});
