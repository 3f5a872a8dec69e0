import { join } from 'node:path';
import { DataSource } from 'typeorm';
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

  it('sends at least 1000 invalid requests over every route and method', () => {
    expect(run.cases.length).toBeGreaterThanOrEqual(1000);
    const covered = hostileCoverage(run.cases);
    expect(HOSTILE_REQUIRED_COVERAGE.filter((op) => !covered[op])).toEqual([]);
    expect(run.report.cases).toBe(run.cases.length);
  });

  it('answers each with a 4xx OCI error: no 5xx, no hang, no other status (known defects aside)', () => {
    expect(hostileVerdict(run.report, KNOWN_DEFECTS, 'embedded')).toEqual([]);
  });

  it('is still alive afterwards', async () => {
    expect(await registryAlive(reg.url)).toBe(true);
  });

  it('changed nothing in the database or the storage', () => {
    expect(run.before.tables.manifests.rows).toBe(2);
    expect(run.before.tables.tags.rows).toBe(1);
    expect(run.before.tables.upload_sessions.rows).toBe(1);
    expect(diffSnapshots(run.before, run.after)).toEqual([]);
  });
});
