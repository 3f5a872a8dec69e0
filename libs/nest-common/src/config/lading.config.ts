import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { StorageDriverConfig } from '@lading/storage';
import { parseDuration } from './duration';

const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (Number.isNaN(ms)) ctx.addIssue({ code: 'custom', message: `not a duration: ${v} (use 90s, 10m, 168h)` });
    return ms;
  });
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');
const int = z.coerce.number().int();
const addr = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port');
/** A list of `host:port`: a YAML list, or one string separated by commas (`LADING_KAFKA_BROKERS=a:9092,b:9092`). */
const addrList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''))
  .pipe(z.array(addr).min(1, 'name at least one host:port'));
/** A duration of at least `min` milliseconds. */
/** One webhook endpoint of `notifications.endpoints`. */
const webhookEndpoint = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9._-]{1,100}$/, 'a name of letters, digits, ".", "_", "-"'),
  disabled: z.boolean().default(false),
  url: z.url({ protocol: /^https?$/ }),
  /** Extra request headers, each a list of values (the reference registry's shape). */
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name'), z.array(z.string())).default({}),
  timeout: duration.default(1000),
  threshold: int.min(1).default(10),
  backoff: duration.default(1000),
  maxbackoff: duration.default(10 * 60_000),
  maxattempts: int.min(1).default(20),
  ignoredmediatypes: z.array(z.string()).default([]),
  ignore: z.strictObject({ mediatypes: z.array(z.string()).default([]), actions: z.array(z.string()).default([]) }).prefault({}),
  secret: z.string().min(16).optional(),
  format: z.enum(['distribution', 'cloudevents']).default('distribution'),
});

const durationAtLeast = (min: number) => duration.refine((ms) => ms >= min, `must be at least ${min} ms`);

/** `storage.s3`: the reference registry's keys; `bucket` and `region` are required when it is chosen. */
const s3Storage = z.strictObject({
  accesskey: z.string().optional(),
  secretkey: z.string().optional(),
  region: z.string().min(1).optional(),
  /** Endpoint URL of an S3-compatible service (MinIO): `http://host:port`. */
  regionendpoint: z.string().min(1).optional(),
  bucket: z.string().min(1).optional(),
  rootdirectory: z.string().optional(),
  /** Path-style requests; default: on with `regionendpoint`, off for AWS. */
  forcepathstyle: bool.optional(),
  secure: bool.default(true),
  /** Part size and staging threshold in bytes, ≥ 5 MiB (the S3 part minimum). */
  chunksize: int.min(5 * 1024 * 1024).default(10 * 1024 * 1024),
});

/** `storage`: one driver's section (`filesystem`, `s3` or `inmemory`) and the shared settings. */
const storageSections = z
  .strictObject({
    /** `rootdirectory` defaults to `<datadir>/storage` (filled in below, once datadir is known). */
    filesystem: z.strictObject({ rootdirectory: z.string().min(1).optional() }).optional(),
    s3: s3Storage.optional(),
    inmemory: z.strictObject({}).optional(),
    /** Blob GETs answer 307 to a presigned storage URL when the driver can make one (s3), unless disabled. */
    redirect: z.strictObject({ disable: bool.default(false) }).prefault({}),
    delete: z.strictObject({ enabled: bool.default(true) }).prefault({}),
    maintenance: z
      .strictObject({
        uploadpurging: z
          .strictObject({
            enabled: bool.default(true),
            age: duration.default(168 * 3_600_000),
            interval: duration.default(24 * 3_600_000),
            dryrun: bool.default(false),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .superRefine((st, ctx) => {
    const chosen = STORAGE_DRIVERS.filter((d) => st[d] !== undefined);
    if (chosen.length > 1) {
      ctx.addIssue({ code: 'custom', message: `configure one storage driver, not ${chosen.join(' and ')}` });
    }
    if (st.s3) {
      for (const key of ['bucket', 'region'] as const) {
        if (!st.s3[key]) ctx.addIssue({ code: 'custom', path: ['s3', key], message: 'required by the s3 driver' });
      }
    }
  });

/**
 * The whole configuration, validated once at start. Keys follow the reference registry's
 * configuration where it has one (`http.addr`, `storage.delete.enabled`,
 * `storage.maintenance.uploadpurging`), so its users feel at home. Every level is a strict
 * object: an unknown key (a typo) is an error, not a silently ignored setting. Paths are made
 * absolute here, in the schema, so nothing changes the object after parsing.
 */
export const ladingConfigSchema = z
  .strictObject({
    datadir: z
      .string()
      .min(1)
      .transform((p) => resolve(p))
      .prefault('./data'),
    log: z
      .strictObject({
        level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
        /**
         * `json`: one JSON object a line (for a log collector); `text`: human-readable, coloured;
         * `auto` (default): text when standard output is a terminal, else JSON.
         */
        formatter: z.enum(['auto', 'json', 'text']).default('auto'),
        /** One `info` line per request (method, operation, status, bytes, duration), unless disabled. */
        accesslog: z.strictObject({ disabled: bool.default(false) }).prefault({}),
      })
      .prefault({}),
    http: z
      .strictObject({
        addr: addr.default('127.0.0.1:5000'),
        /**
         * The debug listener (the reference registry's `http.debug`): Prometheus metrics on a port of
         * their own, never on the public one. Off unless `addr` is set (`LADING_HTTP_DEBUG_ADDR`).
         */
        debug: z
          .strictObject({
            addr: addr.optional(),
            prometheus: z
              .strictObject({
                enabled: bool.default(true),
                path: z.string().regex(/^\/[^\s?#]*$/, 'a path starting with /').default('/metrics'),
              })
              .prefault({}),
          })
          .prefault({}),
        /** Shared secret the gateway signs forwarded requests with (split mode). */
        secret: z.string().min(16).optional(),
        /** Split mode without `secret`: services accept unsigned requests. For a trusted lab only. */
        insecure: bool.default(false),
        /** The largest request head (request line and headers) accepted; the reference registry's is 1 MiB. */
        maxheaderbytes: int.min(4096).max(64 * 1024 * 1024).default(1024 * 1024),
        timeouts: z
          .strictObject({
            /** No byte in or out of a connection for this long (a body, a response write, a wait) closes it. */
            idle: duration.refine((ms) => ms > 0, 'must be more than 0').default(60_000),
            /** The whole request head must arrive within this. */
            headers: duration.refine((ms) => ms > 0, 'must be more than 0').default(60_000),
            /** The whole request, body included, must arrive within this; 0 is no limit (blobs can be big). */
            request: duration.default(0),
          })
          .prefault({}),
        upstream: z
          .strictObject({
            /** Split gateway: connections to each service. */
            connections: int.min(1).max(4096).default(128),
            /** Split gateway: requests that may wait for a connection to each service; beyond, 503. */
            queue: int.min(0).max(1_000_000).default(1024),
            /**
             * Split gateway: requests one connection to a service carries before it is closed and
             * a new one opened, so a connection balancer in front of the service's replicas (a
             * Kubernetes Service) spreads them again, after a restart or a scale-out too; 0 is no limit.
             */
            maxrequests: int.min(0).max(1_000_000).default(100),
          })
          .prefault({}),
      })
      .prefault({}),
    database: z
      .strictObject({
        /** PostgreSQL URL; without it the embedded PGlite under `<datadir>/db` is used. */
        url: z.string().regex(/^postgres(ql)?:\/\//, 'expected postgres://…').optional(),
        poolsize: int.min(1).max(200).default(10),
      })
      .prefault({}),
    storage: storageSections.prefault({}),
    validation: z
      .strictObject({
        manifests: z.strictObject({ maxsize: int.min(1024).default(4 * 1024 * 1024) }).prefault({}),
      })
      .prefault({}),
    /**
     * Online garbage collection (GitLab's key names): review queues in the database, filled in
     * the transaction of each change that may leave garbage, worked by gc-worker (any number of
     * replicas) or by the embedded process. See README "Garbage collection".
     */
    gc: z
      .strictObject({
        disabled: bool.default(false),
        /** How long an item waits in its review queue before a worker may judge it: a blob pushed this long before its manifest is safe. */
        reviewafter: duration.default(24 * 3_600_000),
        /** The longest a failing review is postponed (exponential backoff from 5 minutes, capped). */
        maxbackoff: duration.default(24 * 3_600_000),
        /**
         * The longest a review batch waits for a row lock a push holds before it gives up and is
         * postponed: keep it below PostgreSQL's `deadlock_timeout` (1 s by default), so that in a
         * lock cycle with a push the batch always yields first and the push is never aborted.
         */
        lockwait: durationAtLeast(1).default(200),
        /** Manifests with no tag, no index and no subject are collected (the reference registry's `--delete-untagged`). */
        deleteuntagged: bool.default(false),
        /** Referrers (manifests with a `subject`) are collected once their subject is gone. */
        deleteorphanreferrers: bool.default(true),
        blobs: z
          .strictObject({
            disabled: bool.default(false),
            /** How long an idle blob worker waits before it looks again. */
            interval: durationAtLeast(1).default(5000),
            /** The longest one storage delete may take before the review is postponed. */
            storagetimeout: durationAtLeast(1).default(5000),
          })
          .prefault({}),
        manifests: z
          .strictObject({
            disabled: bool.default(false),
            interval: durationAtLeast(1).default(5000),
          })
          .prefault({}),
      })
      .prefault({}),
    /** The Kafka cluster of the event stream. Without `brokers`, events go to the in-process bus (embedded default). */
    kafka: z
      .strictObject({
        brokers: addrList.optional(),
        clientid: z.string().min(1).default('lading'),
        /** TLS to the brokers (managed clusters: MSK, Confluent Cloud, Aiven…); PEM files. */
        tls: z
          .strictObject({
            enabled: bool.default(false),
            /** CA bundle the brokers' certificates are checked against; default: the system's. */
            ca: z.string().min(1).optional(),
            /** Client certificate and key, for clusters that authenticate clients by TLS. */
            cert: z.string().min(1).optional(),
            key: z.string().min(1).optional(),
            /** Skips checking the brokers' certificates: for tests only. */
            insecureskipverify: bool.default(false),
          })
          .prefault({})
          .refine((t) => (t.cert === undefined) === (t.key === undefined), 'kafka.tls.cert and kafka.tls.key go together'),
        /** SASL authentication to the brokers. */
        sasl: z
          .strictObject({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
            username: z.string().min(1).optional(),
            password: z.string().min(1).optional(),
          })
          .prefault({})
          .refine((s) => s.mechanism === undefined || (s.username !== undefined && s.password !== undefined), 'kafka.sasl.mechanism needs kafka.sasl.username and kafka.sasl.password'),
      })
      .prefault({}),
    notifications: z
      .strictObject({
        kafka: z
          .strictObject({
            /** Topic of every registry event, keyed by repository; created when missing. */
            topic: z
              .string()
              .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'a Kafka topic name: letters, digits, ".", "_", "-"')
              .default('registry.events'),
            /** Partitions and replication factor of a topic the relay creates (an existing topic is left as it is). */
            partitions: int.min(1).max(10_000).default(6),
            /** Default: 3, or the number of brokers when the cluster has fewer. */
            replicationfactor: int.min(1).max(32).optional(),
            /** Idempotent producers of one relay, one request in flight each: how many of its batches are published at once. */
            producers: int.min(1).max(16).default(2),
          })
          .prefault({}),
        outbox: z
          .strictObject({
            /** Sent events are deleted from the outbox once this old (from when they were written; an unsent one never). */
            retention: duration.default(24 * 3_600_000),
            /** How often an idle relay looks for new events. */
            pollinterval: durationAtLeast(10).default(250),
            /** The most events in one relay batch: one publish, in produce requests of at most 512 KiB. */
            batchsize: int.min(1).max(10_000).default(2000),
            /** Batches one relay works on at once: one batch's database round trips overlap another's publish. */
            concurrency: int.min(1).max(16).default(3),
            /** How long a relay's claim on a repository lasts unless renewed: how soon another relay takes over from one that died. */
            lease: durationAtLeast(1000).default(20_000),
          })
          .prefault({}),
        pulls: z
          .strictObject({
            /** Pull events (of blobs and manifests, on GET), as the reference registry sends them. */
            enabled: bool.default(true),
            /** The longest a pull event waits in memory before it is written to the outbox: what a crash can lose. */
            flushinterval: durationAtLeast(10).default(1000),
            /** The most pull events held in memory per process; beyond, pulls are dropped (counted and logged). */
            maxbuffered: int.min(1).max(10_000_000).default(10_000),
          })
          .prefault({}),
        /** Webhook endpoints: the reference registry's keys, plus `secret`, `maxattempts`, `maxbackoff` and `format`. */
        endpoints: z
          .array(webhookEndpoint)
          .default([])
          .superRefine((endpoints, ctx) => {
            const seen = new Set<string>();
            for (const [i, e] of endpoints.entries()) {
              if (seen.has(e.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two endpoints are named ${e.name}` });
              seen.add(e.name);
            }
          }),
        /** Delivered webhook events and dead letters (and the delivery log) are deleted this long after their last attempt. */
        deliveries: z.strictObject({ retention: duration.default(7 * 24 * 3_600_000) }).prefault({}),
        /** Webhook destinations allowed although private, loopback or link-local: host names, IPs or CIDRs (SSRF guard). */
        allowedhosts: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    services: z
      .strictObject({
        blobupload: z
          .strictObject({
            url: z.url().optional(),
            addr: addr.optional(),
            /**
             * Record a saved hash state with each upload session (hashed again off the request's
             * path), so a chunk or PUT on another replica need not re-read the stored bytes.
             * Only where other processes share the database: embedded mode never needs it.
             */
            hashcheckpoints: bool.default(true),
          })
          .prefault({}),
        manifests: z.strictObject({ url: z.url().optional(), addr: addr.optional() }).prefault({}),
        notifications: z.strictObject({ addr: addr.optional(), url: z.url().optional() }).prefault({}),
        gcworker: z.strictObject({ addr: addr.optional(), url: z.url().optional() }).prefault({}),
      })
      .prefault({}),
  })
  .transform((c) => ({ ...c, storage: chooseStorageDriver(c.storage, c.datadir) }));

/** The storage drivers, named as the reference registry's `storage` keys; exactly one is configured (filesystem if none). */
const STORAGE_DRIVERS = ['filesystem', 's3', 'inmemory'] as const;

/**
 * The validated storage section as a union discriminated by `driver`: the chosen driver's
 * section (and only that one) plus the settings every driver shares.
 */
function chooseStorageDriver(
  st: z.output<typeof storageSections>,
  datadir: string,
): StorageDriverConfig & Omit<z.output<typeof storageSections>, (typeof STORAGE_DRIVERS)[number]> {
  const { filesystem, s3, inmemory, ...shared } = st;
  if (s3) return { ...shared, driver: 's3', s3: { ...s3, region: s3.region!, bucket: s3.bucket! } };
  if (inmemory) return { ...shared, driver: 'inmemory' };
  return { ...shared, driver: 'filesystem', filesystem: { rootdirectory: resolve(filesystem?.rootdirectory ?? join(datadir, 'storage')) } };
}

/** `T` with every property, at every depth, read-only: what `Object.freeze` applied recursively gives. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The validated configuration: deep-frozen, so no one changes it after start. Durations are
 * milliseconds; `datadir` and `storage.filesystem.rootdirectory` are absolute paths.
 */
export type LadingConfig = DeepReadonly<z.output<typeof ladingConfigSchema>>;

/**
 * Settings laid over the file and the environment, in the file's shape and units (`'10m'` or
 * milliseconds for a duration), validated like them. For a command that needs a variant of the
 * configuration (`lading gc uploads` runs one pass: `{ storage: { maintenance: { uploadpurging:
 * { enabled: false } } } }`), instead of changing the loaded object.
 */
export type ConfigOverrides = z.input<typeof ladingConfigSchema>;

/** Raised at start when the configuration is invalid; the message lists every problem. */
export class ConfigInvalidError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigInvalidError';
  }
}

/**
 * Loads the configuration: the YAML file named by `LADING_CONFIG` (if any), then the `LADING_*`
 * environment variables over it, then `overrides` over both; validates the result once and
 * returns it deep-frozen. The only reader of `process.env`.
 *
 * Environment variables (the rule; see {@link NON_CONFIG_ENV}):
 * - `LADING_CONFIG` names the file.
 * - Variables for the tools around the registry are never configuration: the prefixes
 *   `LADING_TEST_` (the test harness: `LADING_TEST_PG_URL`…) and `LADING_DEV_` (for new
 *   development tooling), and the exact names `scripts/services` and `.ci/run` already use
 *   (`LADING_SERVICES_DIR`, `LADING_CACHE`, `LADING_PG_PORT`…).
 * - Every other `LADING_*` variable is configuration: one of the aliases `LADING_HTTP_ADDR`,
 *   `LADING_DATA_DIR`, `LADING_DATABASE_URL`, `LADING_HTTP_SECRET`, `LADING_LOG_LEVEL`, or the
 *   key path in upper case with `_` between keys (`LADING_STORAGE_DELETE_ENABLED=false`). A
 *   variable naming no key (`LADING_STORAGE_DELET_ENABLED`) is an error naming it and the
 *   valid keys at that level, so a typo fails at start instead of being ignored.
 *
 * @throws ConfigInvalidError listing every problem: unreadable file, unknown key in the file or
 *   the environment, bad value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides?: ConfigOverrides): LadingConfig {
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};
  const file = env.LADING_CONFIG;
  if (file) {
    if (!existsSync(file)) problems.push(`LADING_CONFIG: file not found: ${file}`);
    else {
      try {
        const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
        if (isPlainObject(parsed)) raw = parsed;
        else if (parsed !== null && parsed !== undefined) problems.push(`LADING_CONFIG: ${file} must hold a mapping of keys`);
      } catch (e) {
        problems.push(`LADING_CONFIG: ${file} is not valid YAML: ${(e as Error).message}`);
      }
    }
  }
  const settings = envSettings(env, problems);
  for (const { path, value } of settings) setAt(raw, path, value);
  if (overrides) mergeInto(raw, overrides as Record<string, unknown>);
  const result = ladingConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...describeIssue(issue, settings));
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems);
  return deepFreeze(result.data!);
}

const ALIASES: Readonly<Record<string, readonly string[]>> = {
  LADING_HTTP_ADDR: ['http', 'addr'],
  LADING_DATA_DIR: ['datadir'],
  LADING_DATABASE_URL: ['database', 'url'],
  LADING_HTTP_SECRET: ['http', 'secret'],
  LADING_LOG_LEVEL: ['log', 'level'],
};

/**
 * `LADING_*` environment variables that are not configuration: `LADING_CONFIG` (it names the
 * file), every name starting with a prefix ending in `_`, and exact names. New tooling should
 * use the `LADING_DEV_` (or, for tests, `LADING_TEST_`) prefix rather than grow the exact list.
 */
export const NON_CONFIG_ENV: readonly string[] = Object.freeze([
  'LADING_CONFIG',
  // The test harness: backends' addresses and credentials (`eval "$(scripts/services env)"`).
  'LADING_TEST_',
  // Reserved for development tooling.
  'LADING_DEV_',
  // scripts/services and .ci/run, which predate the prefix rule.
  'LADING_SERVICES_DIR',
  'LADING_CACHE',
  'LADING_PG_PORT',
  'LADING_KAFKA_PORT',
  'LADING_KAFKA_CONTROLLER_PORT',
  'LADING_KAFKA_HEAP',
  'LADING_KAFKA_JVM_OPTS',
  'LADING_MINIO_PORT',
  'LADING_MINIO_CONSOLE_PORT',
  'LADING_S3_ACCESS_KEY',
  'LADING_S3_SECRET_KEY',
  'LADING_S3_BUCKET',
  'LADING_REFERENCE_PORT',
  'LADING_START_TIMEOUT',
  'LADING_GO_PARALLEL',
  'LADING_JAEGER_OTLP_HTTP_PORT',
  'LADING_JAEGER_OTLP_GRPC_PORT',
  'LADING_JAEGER_QUERY_PORT',
  'LADING_JAEGER_QUERY_GRPC_PORT',
]);

/** True when `name` is a `LADING_*` variable that {@link loadConfig} leaves alone (see {@link NON_CONFIG_ENV}). */
export function isNonConfigEnv(name: string): boolean {
  return NON_CONFIG_ENV.some((reserved) => (reserved.endsWith('_') ? name.startsWith(reserved) : name === reserved));
}

/** One configuration key set from the environment. */
interface EnvSetting {
  readonly name: string;
  readonly path: readonly string[];
  readonly value: string;
}

/** The environment's configuration settings, aliases last (they win over the spelled-out name). */
function envSettings(env: NodeJS.ProcessEnv, problems: string[]): EnvSetting[] {
  const settings: EnvSetting[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (!name.startsWith('LADING_') || value === undefined || isNonConfigEnv(name)) continue;
    const path = ALIASES[name] ?? name.slice('LADING_'.length).toLowerCase().split('_');
    const problem = checkKeyPath(path);
    if (problem) problems.push(`${name}: ${problem}`);
    else settings.push({ name, path, value });
  }
  return settings.sort((a, b) => Number(a.name in ALIASES) - Number(b.name in ALIASES));
}

/** Why `path` names no value of the schema, or undefined when it names one. */
function checkKeyPath(path: readonly string[]): string | undefined {
  let node: z.ZodType = ladingConfigSchema;
  for (let i = 0; i < path.length; i++) {
    const shape = shapeOf(node);
    const here = path.slice(0, i).join('.');
    if (!shape) return `${here} is a value, not a section: it has no key "${path[i]}"`;
    if (!Object.prototype.hasOwnProperty.call(shape, path[i])) {
      const rule = i === 0 ? '; a variable that is not configuration must start with LADING_TEST_ or LADING_DEV_' : '';
      return `unknown key "${path[i]}" ${here ? `in ${here}` : 'at the top level'} (valid: ${Object.keys(shape).join(', ')})${rule}`;
    }
    node = shape[path[i]];
  }
  const shape = shapeOf(node);
  return shape ? `${path.join('.')} is a section, not a value (keys: ${Object.keys(shape).join(', ')})` : undefined;
}

/** The keys of the object schema under wrappers (default, optional, transform…), if it is one. */
function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let node = schema as z.ZodType & { _zod: { def: { type: string; in?: z.ZodType; innerType?: z.ZodType } } };
  for (;;) {
    if (node instanceof z.ZodObject) return node.shape as Record<string, z.ZodType>;
    const def = node._zod.def;
    const inner = def.type === 'pipe' ? def.in : def.innerType;
    if (!inner) return undefined;
    node = inner as typeof node;
  }
}

/** The keys valid at `path`, for the hint of an unknown-key problem. */
function keysAt(path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = ladingConfigSchema;
  for (const key of path) node = node && shapeOf(node)?.[String(key)];
  const shape = node && shapeOf(node);
  return shape ? Object.keys(shape) : [];
}

/** One problem line per zod issue (per key, for unknown keys), naming the variable that set a bad value. */
function describeIssue(issue: z.core.$ZodIssue, settings: readonly EnvSetting[]): string[] {
  const where = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const valid = keysAt(issue.path).join(', ');
    return issue.keys.map((key) => `${where ? `${where}.` : ''}${key}: unknown key (valid keys${where ? ` of ${where}` : ''}: ${valid})`);
  }
  const from = settings.find((s) => s.path.join('.') === where);
  return [`${where || '(root)'}${from ? ` (${from.name})` : ''}: ${issue.message}`];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setAt(raw: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = raw;
  for (const part of path.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** Lays `patch` over `raw`, object by object; any other value replaces what was there. */
function mergeInto(raw: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (isPlainObject(value)) {
      if (!isPlainObject(raw[key])) raw[key] = {};
      mergeInto(raw[key] as Record<string, unknown>, value);
    } else raw[key] = value;
  }
}

/** Freezes `value` and everything it holds. */
function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value as DeepReadonly<T>;
}
