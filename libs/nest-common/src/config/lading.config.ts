import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
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

/**
 * The whole configuration, validated once at start. Keys follow the reference registry's
 * configuration where it has one (`http.addr`, `storage.delete.enabled`,
 * `storage.maintenance.uploadpurging`), so its users feel at home.
 */
export const ladingConfigSchema = z.object({
  datadir: z.string().min(1).default('./data'),
  log: z.object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') }).prefault({}),
  http: z
    .object({
      addr: addr.default('127.0.0.1:5000'),
      /** Shared secret the gateway signs forwarded requests with (split mode). */
      secret: z.string().min(16).optional(),
      /** Split mode without `secret`: services accept unsigned requests. For a trusted lab only. */
      insecure: bool.default(false),
      /** The largest request head (request line and headers) accepted; the reference registry's is 1 MiB. */
      maxheaderbytes: int.min(4096).max(64 * 1024 * 1024).default(1024 * 1024),
      timeouts: z
        .object({
          /** No byte in or out of a connection for this long (a body, a response write, a wait) closes it. */
          idle: duration.refine((ms) => ms > 0, 'must be more than 0').default(60_000),
          /** The whole request head must arrive within this. */
          headers: duration.refine((ms) => ms > 0, 'must be more than 0').default(60_000),
          /** The whole request, body included, must arrive within this; 0 is no limit (blobs can be big). */
          request: duration.default(0),
        })
        .prefault({}),
      upstream: z
        .object({
          /** Split gateway: connections to each service. */
          connections: int.min(1).max(4096).default(128),
          /** Split gateway: requests that may wait for a connection to each service; beyond, 503. */
          queue: int.min(0).max(1_000_000).default(1024),
        })
        .prefault({}),
    })
    .prefault({}),
  database: z
    .object({
      /** PostgreSQL URL; without it the embedded PGlite under `<datadir>/db` is used. */
      url: z.string().regex(/^postgres(ql)?:\/\//, 'expected postgres://…').optional(),
      poolsize: int.min(1).max(200).default(10),
    })
    .prefault({}),
  storage: z
    .object({
      driver: z.enum(['filesystem', 'memory']).default('filesystem'),
      filesystem: z.object({ rootdirectory: z.string().optional() }).prefault({}),
      delete: z.object({ enabled: bool.default(true) }).prefault({}),
      maintenance: z
        .object({
          uploadpurging: z
            .object({
              enabled: bool.default(true),
              age: duration.default(168 * 3_600_000),
              interval: duration.default(24 * 3_600_000),
              dryrun: bool.default(false),
            })
            .prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
  validation: z
    .object({
      manifests: z.object({ maxsize: int.min(1024).default(4 * 1024 * 1024) }).prefault({}),
    })
    .prefault({}),
  services: z
    .object({
      blobupload: z.object({ url: z.url().optional(), addr: addr.optional() }).prefault({}),
      manifests: z.object({ url: z.url().optional(), addr: addr.optional() }).prefault({}),
      notifications: z.object({ addr: addr.optional() }).prefault({}),
      gcworker: z.object({ addr: addr.optional() }).prefault({}),
    })
    .prefault({}),
});

/** The validated configuration. Durations are milliseconds. */
export type LadingConfig = z.infer<typeof ladingConfigSchema>;

/** Raised at start when the configuration is invalid; the message lists every problem. */
export class ConfigInvalidError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigInvalidError';
  }
}

/**
 * Loads the configuration once: the YAML file named by `LADING_CONFIG` (if any), then environment
 * overrides. `LADING_HTTP_ADDR` and `LADING_DATA_DIR` are the common ones; any other key is set
 * with `LADING_<SECTION>_<KEY>…` in upper case (`LADING_STORAGE_DELETE_ENABLED=false`).
 * Throws ConfigInvalidError listing every bad value. The only reader of `process.env`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LadingConfig {
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};
  const file = env.LADING_CONFIG;
  if (file) {
    if (!existsSync(file)) problems.push(`LADING_CONFIG: file not found: ${file}`);
    else {
      try {
        raw = (parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>) ?? {};
      } catch (e) {
        problems.push(`LADING_CONFIG: ${file} is not valid YAML: ${(e as Error).message}`);
      }
    }
  }
  applyEnvOverrides(raw, env);
  const result = ladingConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems);
  const config = result.data!;
  config.datadir = resolve(config.datadir);
  config.storage.filesystem.rootdirectory = resolve(config.storage.filesystem.rootdirectory ?? join(config.datadir, 'storage'));
  return config;
}

const ALIASES: Record<string, string[]> = {
  LADING_HTTP_ADDR: ['http', 'addr'],
  LADING_DATA_DIR: ['datadir'],
  LADING_DATABASE_URL: ['database', 'url'],
  LADING_HTTP_SECRET: ['http', 'secret'],
  LADING_LOG_LEVEL: ['log', 'level'],
};
const NOT_CONFIG = new Set(['LADING_CONFIG']);

function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('LADING_') || NOT_CONFIG.has(key) || value === undefined) continue;
    const path = ALIASES[key] ?? key.slice('LADING_'.length).toLowerCase().split('_');
    let node = raw;
    for (const part of path.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
  }
}
