/**
 * The registries under test, each a child process on a free 127.0.0.1 port with a fresh temp
 * data directory: Lading embedded (`lading serve`) and the reference registry (CNCF Distribution,
 * Debian's `docker-registry`). Both count as ready when `GET /v2/` answers 200.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/support/registry-processes';
import { processTree } from './proc-stats';

/** The repository root (bench/..). */
export const ROOT = resolve(__dirname, '..');

/** Where Debian's `docker-registry` package installs the reference registry. */
export const REFERENCE_BIN = '/usr/bin/docker-registry';

const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_BYTES = 64 * 1024;

/** A running registry the workloads drive. */
export interface Target {
  /** `Lading` or `reference`: the column it gets in the report. */
  name: string;
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** The processes that serve it (one for embedded Lading and the reference), for memory and CPU. */
  pids(): number[];
  /** The last output of the server, for failure messages. */
  log(): string;
  /** Stops the processes (SIGTERM, SIGKILL after a grace period) and removes the temp directory. */
  stop(): Promise<void>;
}

const live = new Set<Target>();
const tempDirs = new Set<string>();

/**
 * Stops every target started and not yet stopped (also ones still starting) and removes every
 * temp directory made: for cleanup on failure or a signal.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop()));
  for (const dir of tempDirs) removeTempDir(dir);
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Starts Lading in one process (`lading serve`), data in a new temp directory. The database is
 * created first by `lading migrate` in a process of its own: PGlite's first boot runs initdb,
 * whose WebAssembly memory stays resident in the process that ran it (several hundred MB), and
 * a registry serves from an existing database for all but its first minute.
 */
export async function startLadingEmbedded(): Promise<Target> {
  const dir = makeTempDir('lading-bench-lading-');
  const port = await freePort();
  const env = { LADING_DATA_DIR: dir, LADING_HTTP_ADDR: `127.0.0.1:${port}`, LADING_LOG_LEVEL: 'warn' };
  const lading = join(ROOT, 'scripts/lading.js');
  await new Promise<void>((ok, fail) =>
    execFile(
      process.execPath,
      [lading, 'migrate'],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: READY_TIMEOUT_MS },
      (e, _out, err) => (e ? fail(new Error(`lading migrate failed: ${e.message}\n${err}`)) : ok()),
    ),
  );
  return startServer('Lading', dir, port, process.execPath, [lading, 'serve'], env);
}

/**
 * Starts the reference registry with a generated config: filesystem storage in a new temp
 * directory, deletes enabled, no auth, errors-only logging, access log off (Lading at `warn`
 * logs no requests either), and the in-memory blob descriptor cache that the stock config of the
 * upstream image and of the Debian package both enable.
 */
export async function startReference(bin: string): Promise<Target> {
  const dir = makeTempDir('lading-bench-reference-');
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  cache:',
      '    blobdescriptor: inmemory',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  return startServer('reference', dir, port, bin, ['serve', config], {});
}

/** `docker-registry --version`, or why it cannot be run. */
export function referenceVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error)
    throw new Error(
      `cannot run the reference registry ${bin}: ${r.error.message} (install it: apt-get install docker-registry)`,
    );
  return r.stdout.trim().split(/\s+/).slice(1).join(' ');
}

async function startServer(
  name: string,
  dir: string,
  port: number,
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<Target> {
  const proc = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-LOG_TAIL_BYTES);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let spawnError: Error | undefined;
  const exited = new Promise<void>((ok) => {
    proc.once('exit', () => ok());
    proc.once('error', (e) => {
      spawnError = e;
      ok();
    });
  });
  let stopped: Promise<void> | undefined;
  const target: Target = {
    name,
    url: `http://127.0.0.1:${port}`,
    pids: () => (running(proc) ? processTree(proc.pid!) : []),
    log: () => tail,
    stop: () =>
      (stopped ??= (async () => {
        await stopProcess(proc, exited);
        removeTempDir(dir);
        live.delete(target);
      })()),
  };
  live.add(target);
  try {
    await waitReady(target, proc, () => spawnError);
    return target;
  } catch (e) {
    await target.stop();
    throw e;
  }
}

async function waitReady(target: Target, proc: ChildProcess, spawnError: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const error = spawnError();
    if (error) throw new Error(`cannot start ${target.name}: ${error.message}`);
    if (!running(proc))
      throw new Error(
        `${target.name} exited with ${proc.exitCode ?? proc.signalCode} before it was ready:\n${target.log()}`,
      );
    try {
      const res = await fetch(`${target.url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${target.name} not ready in ${READY_TIMEOUT_MS / 1000}s:\n${target.log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function running(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (!running(proc)) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => running(proc) && proc.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
