/**
 * Running real registry clients (skopeo, crane, oras) and the conformance binary from tests:
 * binaries come from the environment (`eval "$(scripts/services env)"`), every run uses an
 * argument array (no shell), a private HOME so no auth or config file leaks in or out, and a
 * timeout; and the stacks (embedded, split, embedded on S3, replicated split on S3) behind one
 * factory type for `describe.each`.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbedded, startSplit } from './registry-processes';
import { replicaSpread, startReplicated, type ReplicaSpread } from './replicated-stack';
import { purgeS3Root, s3RegistryEnv } from './s3';

/**
 * The OCI conformance suite's settings for a full run against `url`: pull, push, content
 * discovery and management, no automatic cross-mount, skipped workflows shown, reports in `reportDir`.
 */
export function conformanceEnv(url: string, namespace: string, mountNamespace: string, reportDir: string): Record<string, string> {
  return {
    OCI_ROOT_URL: url,
    OCI_NAMESPACE: namespace,
    OCI_CROSSMOUNT_NAMESPACE: mountNamespace,
    OCI_AUTOMATIC_CROSSMOUNT: '0',
    OCI_TEST_PULL: '1',
    OCI_TEST_PUSH: '1',
    OCI_TEST_CONTENT_DISCOVERY: '1',
    OCI_TEST_CONTENT_MANAGEMENT: '1',
    OCI_HIDE_SKIPPED_WORKFLOWS: '0',
    OCI_REPORT_DIR: reportDir,
  };
}

/** The path of a tool named by environment variable `name`; throws a message saying how to get it. */
export function toolPath(name: 'SKOPEO' | 'CRANE' | 'ORAS' | 'OCI_CONFORMANCE_BIN'): string {
  const path = process.env[name];
  if (!path) {
    throw new Error(
      `${name} is not set: run \`bash scripts/services install clients conformance\` and then ` +
        '`eval "$(bash scripts/services env)"` before the integration tests',
    );
  }
  return path;
}

/** What a finished tool run returned. */
export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A private home for client runs: config, auth and caches stay inside and go away with it. */
export interface ClientSandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Runs `bin args…`; with `check` (the default) a non-zero exit throws with the output. */
  run(
    bin: string,
    args: string[],
    options?: { check?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string },
  ): Promise<ToolResult>;
  remove(): void;
}

/** Makes a {@link ClientSandbox} in a new temp folder. */
export function clientSandbox(prefix = 'lading-clients-'): ClientSandbox {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  const runtime = join(dir, 'run');
  mkdirSync(home);
  mkdirSync(runtime, { mode: 0o700 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    DOCKER_CONFIG: join(home, '.docker'),
    REGISTRY_AUTH_FILE: join(home, 'auth.json'),
    TMPDIR: dir,
    // Keep proxies configured on the machine away from loopback traffic.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  return {
    dir,
    env,
    run: (bin, args, options = {}) => runTool(bin, args, { ...options, env: { ...env, ...options.env } }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs `bin args…` without a shell; resolves with exit code and output, or rejects when `check` and it failed. */
export function runTool(
  bin: string,
  args: string[],
  options: { check?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ToolResult> {
  const { check = true, timeoutMs = 180_000 } = options;
  return new Promise((ok, fail) => {
    execFile(
      bin,
      args,
      {
        env: options.env,
        cwd: options.cwd,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const spawnFailed = error && typeof (error as NodeJS.ErrnoException).code === 'string';
        if (spawnFailed) return fail(new Error(`${bin}: ${error.message}`));
        const code = error ? ((error as { code?: number }).code ?? -1) : 0;
        const killed = error && (error as { killed?: boolean }).killed;
        const result = { code: killed ? -1 : code, stdout, stderr };
        if (check && result.code !== 0) {
          const why = killed ? `timed out after ${timeoutMs} ms` : `exited with ${code}`;
          return fail(new Error(`${bin} ${args.join(' ')} ${why}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
        }
        ok(result);
      },
    );
  });
}

/** A running registry as the client tests see it. */
export interface ClientStack {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  host: string;
  /** The registry's own output, for failure messages. */
  log(): string;
  /** Replicated stacks only: requests served so far by each replica of each app. */
  spread?(): ReplicaSpread;
  stop(): Promise<void>;
}

/** Starts one kind of stack. */
export type StackFactory = () => Promise<ClientStack>;

/** The embedded registry (one process, PGlite and a filesystem under a temp folder). */
export const embeddedStack: StackFactory = async () => {
  const p = await startEmbedded();
  return {
    url: p.url,
    host: new URL(p.url).host,
    log: p.log,
    async stop() {
      await p.stop();
      rmSync(p.dataDir, { recursive: true, force: true });
    },
  };
};

/** Split mode: gateway, blob-upload, manifests and the workers as processes on PostgreSQL. */
export const splitStack: StackFactory = async () => {
  const s = await startSplit();
  return {
    url: s.url,
    host: new URL(s.url).host,
    log: () =>
      Object.values(s.apps)
        .map((p) => `--- ${p.app}\n${p.log()}`)
        .join('\n'),
    stop: () => s.stop(),
  };
};

/**
 * The embedded registry with the s3 driver on the test MinIO (its own root in the bucket, purged
 * at stop), blob GETs redirected to presigned URLs (the default): clients must follow them.
 */
export const embeddedS3Stack: StackFactory = async () => {
  const root = `stack/${randomUUID()}`;
  const p = await startEmbedded(s3RegistryEnv(root));
  return {
    url: p.url,
    host: new URL(p.url).host,
    log: p.log,
    async stop() {
      await p.stop();
      rmSync(p.dataDir, { recursive: true, force: true });
      await purgeS3Root(root);
    },
  };
};

/**
 * Split mode as a cluster runs it, on PostgreSQL and MinIO (blob GETs redirected): two replicas
 * each of gateway, blob-upload and manifests behind round-robin connection balancers, plus
 * notifications and gc-worker; `spread` tells how requests were shared out.
 */
export const replicatedS3Stack: StackFactory = async () => {
  // A connection to a service carries 3 requests (not 100, the default), so that even the
  // conformance suite, one client on one connection, sends consecutive requests of an upload or
  // a push to different replicas.
  const s = await startReplicated({ replicas: 2, storage: 's3', env: { LADING_HTTP_UPSTREAM_MAXREQUESTS: '3' } });
  return {
    url: s.url,
    host: new URL(s.url).host,
    log: s.log,
    spread: () => replicaSpread(s),
    stop: s.stop,
  };
};

/** The stacks, as `describe.each` rows. */
export const STACKS: [string, StackFactory][] = [
  ['embedded', embeddedStack],
  ['split', splitStack],
  ['embedded-s3', embeddedS3Stack],
  ['split-replicas-s3', replicatedS3Stack],
];

/** A repository name nobody else uses: `<prefix>/<random>`. */
export function uniqueRepo(prefix: string): string {
  return `${prefix}/r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
