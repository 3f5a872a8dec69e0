import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from './duration';
import { ConfigInvalidError, loadConfig } from './lading.config';

describe('loadConfig', () => {
  it('gives defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c.http.addr).toBe('127.0.0.1:5000');
    expect(c.storage.delete.enabled).toBe(true);
    expect(c.validation.manifests.maxsize).toBe(4 * 1024 * 1024);
    expect(c.storage.maintenance.uploadpurging.age).toBe(168 * 3_600_000);
    expect(c.storage.filesystem.rootdirectory).toBe(join(c.datadir, 'storage'));
  });

  it('takes the YAML file, then environment overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-config-'));
    const file = join(dir, 'c.yml');
    writeFileSync(file, 'http:\n  addr: 127.0.0.1:6000\nstorage:\n  delete:\n    enabled: true\n');
    const c = loadConfig({ LADING_CONFIG: file, LADING_STORAGE_DELETE_ENABLED: 'false', LADING_DATA_DIR: dir });
    expect(c.http.addr).toBe('127.0.0.1:6000');
    expect(c.storage.delete.enabled).toBe(false);
    expect(c.datadir).toBe(dir);
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      loadConfig({
        LADING_HTTP_ADDR: 'nonsense',
        LADING_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: 'soon',
        LADING_DATABASE_URL: 'mysql://x',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    const problems = (err as ConfigInvalidError).problems.join('\n');
    expect(problems).toContain('http.addr');
    expect(problems).toContain('storage.maintenance.uploadpurging.age');
    expect(problems).toContain('database.url');
  });

  it('reports a missing config file', () => {
    expect(() => loadConfig({ LADING_CONFIG: '/nonexistent/lading.yml' })).toThrow(/file not found/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    [1234, 1234],
  ])('%s -> %d', (input, ms) => expect(parseDuration(input)).toBe(ms));
  it.each(['', 'soon', '10', '5d', 'm10'])('refuses %s', (input) => expect(parseDuration(input)).toBeNaN());
});
