import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseDuration } from './duration';
import { ConfigInvalidError, isNonConfigEnv, loadConfig, type LadingConfig } from './lading.config';

/** The problems loadConfig reports for `env`, or [] when it accepts it. */
function problemsOf(env: NodeJS.ProcessEnv, overrides?: Parameters<typeof loadConfig>[1]): string[] {
  try {
    loadConfig(env, overrides);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigInvalidError)) throw e;
    return e.problems;
  }
}

/** The filesystem driver's root of a configuration that chose it. */
function rootOf(c: LadingConfig): string {
  if (c.storage.driver !== 'filesystem') throw new Error(`driver is ${c.storage.driver}`);
  return c.storage.filesystem.rootdirectory;
}

function yamlFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'lading-config-')), 'c.yml');
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('gives defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c.http.addr).toBe('127.0.0.1:5000');
    expect(c.storage.delete.enabled).toBe(true);
    expect(c.validation.manifests.maxsize).toBe(4 * 1024 * 1024);
    expect(c.storage.maintenance.uploadpurging.age).toBe(168 * 3_600_000);
    expect(c.http.upstream).toEqual({ connections: 128, queue: 1024, maxrequests: 100 });
    expect(rootOf(c)).toBe(join(c.datadir, 'storage'));
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

  it('makes datadir and the storage root absolute, the root under datadir by default', () => {
    const c = loadConfig({ LADING_DATA_DIR: 'some/dir' });
    expect(c.datadir).toBe(resolve('some/dir'));
    expect(rootOf(c)).toBe(join(resolve('some/dir'), 'storage'));
    const d = loadConfig({ LADING_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'blobs' });
    expect(isAbsolute(d.datadir)).toBe(true);
    expect(rootOf(d)).toBe(resolve('blobs'));
  });
});

describe('loadConfig: the storage driver', () => {
  const s3Env = {
    LADING_STORAGE_S3_BUCKET: 'registry',
    LADING_STORAGE_S3_REGION: 'us-east-1',
    LADING_STORAGE_S3_REGIONENDPOINT: 'http://127.0.0.1:9000',
    LADING_STORAGE_S3_ACCESSKEY: 'key',
    LADING_STORAGE_S3_SECRETKEY: 'secret',
  };

  it('is the filesystem without a driver section, with redirects on (unused: it makes no URLs)', () => {
    const c = loadConfig({});
    expect(c.storage).toMatchObject({ driver: 'filesystem', redirect: { disable: false } });
    expect(c.storage).not.toHaveProperty('s3');
  });

  it('is s3 with the reference registry keys, from the environment, with its defaults', () => {
    const c = loadConfig({ ...s3Env, LADING_STORAGE_S3_FORCEPATHSTYLE: 'true', LADING_STORAGE_S3_ROOTDIRECTORY: '/lading' });
    expect(c.storage).toMatchObject({
      driver: 's3',
      s3: { ...Object.fromEntries(Object.entries(s3Env).map(([k, v]) => [k.slice('LADING_STORAGE_S3_'.length).toLowerCase(), v])), forcepathstyle: true, rootdirectory: '/lading', secure: true, chunksize: 10 * 1024 * 1024 },
      redirect: { disable: false },
    });
    expect(c.storage).not.toHaveProperty('filesystem');
  });

  it('is s3 from the YAML file, with redirects disabled and a chunk size', () => {
    const file = yamlFile('storage:\n  s3:\n    bucket: b\n    region: r\n    chunksize: 6291456\n    secure: false\n  redirect:\n    disable: true\n');
    const c = loadConfig({ LADING_CONFIG: file });
    expect(c.storage).toMatchObject({ driver: 's3', s3: { bucket: 'b', region: 'r', chunksize: 6291456, secure: false }, redirect: { disable: true } });
  });

  it('is inmemory when that section is given', () => {
    expect(loadConfig({}, { storage: { inmemory: {} } }).storage.driver).toBe('inmemory');
  });

  it('requires bucket and region for s3 only, and refuses a chunk size below 5 MiB', () => {
    expect(problemsOf({ LADING_STORAGE_S3_ACCESSKEY: 'k' })).toEqual([
      'storage.s3.bucket: required by the s3 driver',
      'storage.s3.region: required by the s3 driver',
    ]);
    expect(problemsOf({ ...s3Env, LADING_STORAGE_S3_CHUNKSIZE: '1024' })).toEqual([expect.stringMatching(/^storage.s3.chunksize \(LADING_STORAGE_S3_CHUNKSIZE\): /)]);
    expect(problemsOf({ LADING_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/x' })).toEqual([]);
  });

  it('refuses two drivers at once, and an unknown s3 key', () => {
    expect(problemsOf({ ...s3Env, LADING_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/x' })).toEqual(['storage: configure one storage driver, not filesystem and s3']);
    expect(problemsOf({ LADING_STORAGE_S3_BUKET: 'b' })).toEqual([expect.stringMatching(/^LADING_STORAGE_S3_BUKET: unknown key "buket" in storage.s3 \(valid: accesskey, secretkey, region, regionendpoint, bucket, rootdirectory, forcepathstyle, secure, chunksize\)/)]);
  });
});

describe('loadConfig refuses unknown keys', () => {
  it.each<[string, NodeJS.ProcessEnv, RegExp]>([
    ['a typo in a key', { LADING_STORAGE_DELET_ENABLED: 'false' }, /^LADING_STORAGE_DELET_ENABLED: unknown key "delet" in storage \(valid: filesystem, s3, inmemory, redirect, delete, maintenance\)$/],
    ['a typo in the last key', { LADING_STORAGE_DELETE_ENABLE: 'false' }, /^LADING_STORAGE_DELETE_ENABLE: unknown key "enable" in storage.delete \(valid: enabled\)$/],
    ['a typo in the section', { LADING_STORGE_DELETE_ENABLED: 'false' }, /^LADING_STORGE_DELETE_ENABLED: unknown key "storge" at the top level \(valid: datadir, log, http, database, storage, validation, gc, kafka, notifications, services\); .*LADING_TEST_/],
    ['a key below a value', { LADING_HTTP_ADDR_PORT: '5000' }, /^LADING_HTTP_ADDR_PORT: http.addr is a value, not a section/],
    ['a section given a value', { LADING_STORAGE_DELETE: 'false' }, /^LADING_STORAGE_DELETE: storage.delete is a section, not a value \(keys: enabled\)$/],
    ['an empty key', { LADING_STORAGE__DRIVER: 'memory' }, /^LADING_STORAGE__DRIVER: unknown key "" in storage/],
  ])('from the environment: %s', (_name, env, message) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('fails start with the one ConfigInvalidError naming the variable', () => {
    expect(() => loadConfig({ LADING_STORAGE_DELET_ENABLED: 'false' })).toThrow(ConfigInvalidError);
    expect(() => loadConfig({ LADING_STORAGE_DELET_ENABLED: 'false' })).toThrow(/LADING_STORAGE_DELET_ENABLED/);
  });

  it.each<[string, string, string]>([
    ['at the top level', 'datadir: /tmp/x\nstorgae: {}\n', 'storgae: unknown key (valid keys: datadir, log, http, database, storage, validation, gc, kafka, notifications, services)'],
    ['in a section', 'storage:\n  delete:\n    enabeld: false\n', 'storage.delete.enabeld: unknown key (valid keys of storage.delete: enabled)'],
    ['deep down', 'storage:\n  maintenance:\n    uploadpurging:\n      dry-run: true\n', 'storage.maintenance.uploadpurging.dry-run: unknown key (valid keys of storage.maintenance.uploadpurging: enabled, age, interval, dryrun)'],
  ])('from the YAML file: %s', (_name, yaml, problem) => {
    expect(problemsOf({ LADING_CONFIG: yamlFile(yaml) })).toEqual([problem]);
  });

  it('lists unknown keys together with bad values', () => {
    const problems = problemsOf({
      LADING_CONFIG: yamlFile('http:\n  adress: 0.0.0.0:5000\n'),
      LADING_STORAGE_DELET_ENABLED: 'false',
      LADING_HTTP_ADDR: 'nonsense',
    });
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toContain('LADING_STORAGE_DELET_ENABLED');
    expect(problems.join('\n')).toContain('http.adress: unknown key');
    expect(problems.join('\n')).toContain('http.addr (LADING_HTTP_ADDR): expected host:port');
  });

  it('refuses a file that is not a mapping', () => {
    expect(problemsOf({ LADING_CONFIG: yamlFile('- a\n- b\n') })).toEqual([expect.stringMatching(/must hold a mapping/)]);
  });
});

describe('environment variables that are not configuration', () => {
  it.each([
    'LADING_CONFIG',
    'LADING_TEST_PG_URL',
    'LADING_TEST_KAFKA_BROKERS',
    'LADING_TEST_S3_ENDPOINT',
    'LADING_DEV_ANYTHING',
    'LADING_SERVICES_DIR',
    'LADING_CACHE',
    'LADING_PG_PORT',
  ])('%s is left alone', (name) => {
    expect(isNonConfigEnv(name)).toBe(true);
    const env = name === 'LADING_CONFIG' ? {} : { [name]: 'whatever' };
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });

  it.each(['LADING_STORAGE_DRIVER', 'LADING_TESTS', 'LADING_SERVICES_DIRECTORY', 'LADING_PG'])('%s is configuration', (name) => {
    expect(isNonConfigEnv(name)).toBe(false);
  });

  it('covers every LADING_ variable the development scripts and CI use', () => {
    // scripts/services and .ci/run export these into the shells that run the registry and the tests.
    const root = join(__dirname, '../../../..');
    const names = new Set<string>();
    for (const file of ['scripts/services', '.ci/run']) {
      for (const [name] of readFileSync(join(root, file), 'utf8').matchAll(/\bLADING_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(name);
    }
    expect(names.size).toBeGreaterThan(10);
    const refused = [...names].filter((name) => problemsOf({ [name]: 'x' }).some((p) => p.startsWith(`${name}:`)));
    expect(refused).toEqual([]);
  });
});

describe('the loaded configuration', () => {
  it('is frozen at every level', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.storage)).toBe(true);
    expect(Object.isFrozen(c.storage.maintenance.uploadpurging)).toBe(true);
    expect(Object.isFrozen(c.services.blobupload)).toBe(true);
    expect(() => {
      (c.storage.maintenance.uploadpurging as { dryrun: boolean }).dryrun = true;
    }).toThrow(TypeError);
    expect(loadConfig({}).storage.maintenance.uploadpurging.dryrun).toBe(false);
  });

  it('takes overrides over the file and the environment, validated like them', () => {
    const env = { LADING_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'true', LADING_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: '1h' };
    const c = loadConfig(env, { storage: { maintenance: { uploadpurging: { enabled: false, dryrun: true } } } });
    expect(c.storage.maintenance.uploadpurging).toEqual({ enabled: false, dryrun: true, age: 3_600_000, interval: 24 * 3_600_000 });
    expect(Object.isFrozen(c.storage.maintenance.uploadpurging)).toBe(true);
    expect(problemsOf({}, { storage: { maintenance: { uploadpurging: { age: 'soon' } } } })).toEqual([
      expect.stringContaining('storage.maintenance.uploadpurging.age'),
    ]);
  });

  it('reads the event settings: no brokers (the in-process bus) by default, LADING_KAFKA_BROKERS as a comma-separated list', () => {
    const d = loadConfig({});
    expect(d.kafka.brokers).toBeUndefined();
    expect(d.notifications.kafka).toEqual({ topic: 'registry.events', partitions: 6, producers: 2 });
    expect(d.notifications.outbox).toEqual({ retention: 24 * 3_600_000, pollinterval: 250, batchsize: 2000, concurrency: 3, lease: 20_000 });
    expect(d.notifications.pulls).toEqual({ enabled: true, flushinterval: 1000, maxbuffered: 10_000 });
    const c = loadConfig({
      LADING_KAFKA_BROKERS: 'kafka-0:9092, kafka-1:9092,',
      LADING_NOTIFICATIONS_KAFKA_TOPIC: 'events.test',
      LADING_NOTIFICATIONS_KAFKA_REPLICATIONFACTOR: '3',
      LADING_NOTIFICATIONS_OUTBOX_RETENTION: '1h',
      LADING_NOTIFICATIONS_PULLS_FLUSHINTERVAL: '200ms',
    });
    expect(c.kafka.brokers).toEqual(['kafka-0:9092', 'kafka-1:9092']);
    expect(c.notifications.kafka).toEqual({ topic: 'events.test', partitions: 6, replicationfactor: 3, producers: 2 });
    expect(c.notifications.outbox.retention).toBe(3_600_000);
    expect(c.notifications.pulls.flushinterval).toBe(200);
    expect(loadConfig({ LADING_CONFIG: yamlFile('kafka:\n  brokers: [a:1, b:2]\n') }).kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it('refuses bad event settings, naming each', () => {
    const problems = problemsOf({
      LADING_KAFKA_BROKERS: 'nonsense',
      LADING_NOTIFICATIONS_KAFKA_TOPIC: 'no spaces',
      LADING_NOTIFICATIONS_OUTBOX_LEASE: '10ms',
    }).join('\n');
    expect(problems).toContain('kafka.brokers');
    expect(problems).toContain('notifications.kafka.topic');
    expect(problems).toContain('notifications.outbox.lease');
    expect(problemsOf({ LADING_KAFKA_BROKERS: ' , ' }).join('\n')).toContain('kafka.brokers');
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
