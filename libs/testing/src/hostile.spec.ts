import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_HOSTILE_SEED,
  HOSTILE_REQUIRED_COVERAGE,
  hostileCases,
  hostileCoverage,
  hostileSeed,
  hostileSeedContent,
  KNOWN_DEFECTS,
  type HostileTarget,
} from './hostile';
import { diffSnapshots, hostileVerdict, isOciEnvelope, listTree, type HostileReport } from './hostile-runner';

const content = hostileSeedContent(7);
const { uploadChunk, ...rest } = content;
const target: HostileTarget = {
  ...rest,
  upload: { id: '0b7a6f52-1c1e-4c38-9d8e-3b9d2c1f0a11', size: uploadChunk.length },
};

describe('hostileCases', () => {
  it('gives the same cases for the same seed, in another order for another seed', () => {
    const a = hostileCases(target, 1);
    const b = hostileCases(target, 1);
    const c = hostileCases(target, 2);
    expect(a.map((x) => [x.label, x.method, x.path, x.headers, x.body?.toString('base64')])).toEqual(
      b.map((x) => [x.label, x.method, x.path, x.headers, x.body?.toString('base64')]),
    );
    expect(c.map((x) => x.label)).not.toEqual(a.map((x) => x.label));
  });

  it('makes at least 1000 uniquely labelled cases over every required operation', () => {
    const cases = hostileCases(target, DEFAULT_HOSTILE_SEED);
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    expect(new Set(cases.map((c) => c.label)).size).toBe(cases.length);
    const covered = hostileCoverage(cases);
    expect(HOSTILE_REQUIRED_COVERAGE.filter((op) => !covered[op])).toEqual([]);
  });

  it('keeps labels free of seed-dependent values, so KNOWN_DEFECTS names cases of every seed', () => {
    const keys = (seed: number) => new Set(hostileCases(target, seed).map((c) => c.key));
    const [one, two] = [keys(3), keys(4)];
    expect([...one].filter((k) => !two.has(k))).toEqual([]);
    expect(Object.keys(KNOWN_DEFECTS).filter((k) => !one.has(k))).toEqual([]);
  });

  it('never sends a plain session-opening POST to a valid repository name, nor the seeded manifest as it was pushed', () => {
    const cases = hostileCases(target, DEFAULT_HOSTILE_SEED);
    const R = target.repository;
    expect(cases.filter((c) => c.method === 'POST' && c.path === `/v2/${R}/blobs/uploads/`)).toEqual([]);
    const repush = cases.filter(
      (c) =>
        c.method === 'PUT' &&
        c.path.startsWith(`/v2/${R}/manifests/`) &&
        c.body?.equals(target.manifest.bytes) &&
        c.headers['content-type'] === target.manifest.mediaType,
    );
    // Only to a bad reference, or with a Content-Length Node's parser refuses.
    const refusedLength = (c: (typeof repush)[number]) =>
      ['abc', '-1', '99999999999999999999'].includes(c.headers['content-length']);
    expect(repush.filter((c) => c.path === `/v2/${R}/manifests/${target.tag}` && !refusedLength(c))).toEqual([]);
  });
});

describe('hostileSeed', () => {
  it.each<[string | undefined, number | 'throws']>([
    [undefined, DEFAULT_HOSTILE_SEED],
    ['', DEFAULT_HOSTILE_SEED],
    ['42', 42],
    ['0', 0],
    ['-1', 'throws'],
    ['1.5', 'throws'],
    ['abc', 'throws'],
  ])('reads LADING_HOSTILE_SEED=%j as %s', (raw, expected) => {
    const env = { LADING_HOSTILE_SEED: raw };
    if (expected === 'throws') expect(() => hostileSeed(env)).toThrow(/LADING_HOSTILE_SEED/);
    else expect(hostileSeed(env)).toBe(expected);
  });
});

describe('isOciEnvelope', () => {
  it.each<[string, boolean]>([
    ['{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}', true],
    ['{"errors":[{"code":"NAME_INVALID","message":"bad name","detail":{"name":"x"}}]}', true],
    ['{"errors":[{"code":"A","message":""},{"code":"B","message":"b"}]}', true],
    ['{"errors":[]}', false],
    ['{"errors":[{"code":"","message":"x"}]}', false],
    ['{"errors":[{"message":"x"}]}', false],
    ['{"errors":[{"code":"A"}]}', false],
    ['{"errors":{"code":"A","message":"x"}}', false],
    ['{}', false],
    ['null', false],
    ['', false],
    ['<html>bad request</html>', false],
  ])('%s → %s', (body, expected) => {
    expect(isOciEnvelope(Buffer.from(body))).toBe(expected);
  });
});

describe('hostileVerdict', () => {
  const [first] = hostileCases(target, 1);
  const report = (failed: string[]): HostileReport => ({
    seed: 1,
    cases: 1,
    durationMs: 1,
    statuses: {},
    staleSocketRetries: [],
    failures: failed.map((key) => ({ case: { ...first, key, label: key }, kind: '5xx', status: 500, excerpt: '' })),
  });
  const known = { 'a known one': { defect: 'x', deployments: ['embedded'] as const } };

  it('is empty when exactly the known defects fail', () => {
    expect(hostileVerdict(report(['a known one']), known, 'embedded')).toEqual([]);
  });
  it('names the seed and each unexpected failure', () => {
    const lines = hostileVerdict(report(['a known one', 'a new one']), known, 'embedded');
    expect(lines[0]).toMatch(/^seed 1 \(rerun with LADING_HOSTILE_SEED=1\)/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^a new one \| .* → 5xx 500/)]);
  });
  it('asks to remove a known defect that no longer fails', () => {
    expect(hostileVerdict(report([]), known, 'embedded')[1]).toMatch(/^a known one \| no longer fails on embedded/);
  });
  it('applies a known defect only to its deployments', () => {
    expect(hostileVerdict(report(['a known one']), known, 'split')).toHaveLength(2);
  });
});

describe('listTree and diffSnapshots', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lading-hostile-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists folders and files with sizes, sorted, and reports what was added or removed', () => {
    mkdirSync(join(dir, 'b/c'), { recursive: true });
    writeFileSync(join(dir, 'b/c/data'), 'four');
    writeFileSync(join(dir, 'a'), '');
    const before = { tables: { tags: { rows: 1, md5: 'x' } }, storage: listTree(dir) };
    expect(before.storage).toEqual(['a 0', 'b/', 'b/c/', 'b/c/data 4']);
    writeFileSync(join(dir, 'b/c/data'), 'five!');
    const after = { tables: { tags: { rows: 2, md5: 'y' } }, storage: listTree(dir) };
    const all = (t: Record<string, { rows: number; md5: string }>) =>
      Object.fromEntries(
        [
          'repositories',
          'blobs',
          'repository_blobs',
          'manifests',
          'manifest_references',
          'tags',
          'upload_sessions',
          'event_outbox',
        ].map((n) => [n, t[n] ?? { rows: 0, md5: '' }]),
      );
    expect(diffSnapshots({ ...before, tables: all(before.tables) }, { ...after, tables: all(after.tables) })).toEqual([
      'table tags: 1 rows (x) → 2 rows (y)',
      'storage: - b/c/data 4',
      'storage: + b/c/data 5',
    ]);
  });
});
