import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBlob, randomImage, RegistryTestClient } from '@lading/testing';
import { createTestDatabase, startEmbedded, type LadingProcess } from '../support/registry-processes';

jest.setTimeout(300_000);

const LADING = resolve(__dirname, '../../scripts/lading.js');
const SECRET = 'gc-cli-int-spec-secret-0123456789';
/** The background workers off, so what the command does is what the test sees. */
const ENV = { LADING_HTTP_SECRET: SECRET, LADING_GC_REVIEWAFTER: '0s', LADING_GC_DISABLED: 'true', LADING_LOG_LEVEL: 'warn' };

/** `lading gc …` as an operator runs it (not on a terminal: plain progress lines). */
function gc(env: Record<string, string>, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [LADING, 'gc', ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `lading gc …` on a pseudo-terminal (util-linux `script`): stdout and stderr as the terminal shows them. */
function onTerminal(env: Record<string, string>, ...args: string[]): { code: number | null; output: string } {
  const command = [process.execPath, LADING, 'gc', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, output: r.stdout };
}

describe('lading gc run | status, as a command', () => {
  it('works through a running embedded registry, and in its own process when none runs', async () => {
    let reg: (LadingProcess & { dataDir: string }) | undefined = await startEmbedded(ENV);
    const dataDir = reg.dataDir;
    const c = new RegistryTestClient(reg.url);
    try {
      const loose = randomBlob(1000);
      expect((await c.pushBlob('cli/app', loose)).status).toBe(201);
      const kept = randomImage({ layers: 1 });
      expect((await c.pushImage('cli/app', kept, 'v1')).status).toBe(201);

      const status = gc(ENV, 'status', '--url', reg.url);
      expect(status.code).toBe(0);
      const before = JSON.parse(status.stdout);
      expect(before.queues.find((q: { queue: string }) => q.queue === 'links')).toMatchObject({ depth: 3, due: 3 });

      const dry = gc(ENV, 'run', '--dry-run', '--url', reg.url);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/gc dry run: .*would delete 1 /);
      // On a terminal (a pseudo-terminal here): a bar per queue pass, redrawn in place, then the summary.
      const tty = onTerminal(ENV, 'run', '--dry-run', '--url', reg.url);
      expect(tty.code).toBe(0);
      expect(tty.output).toMatch(/gc: links \[-{24}\] 0% 0\/3 items/);
      expect(tty.output).toContain('\r\x1b[2Kgc: links: 3/3 items, done in ');
      expect(tty.output).toMatch(/gc dry run: .*would delete 1 /);
      expect((await c.call('HEAD', `/v2/cli/app/blobs/${loose.digest}`)).status).toBe(200);

      const run = gc(ENV, 'run', '--url', reg.url);
      expect(run.code).toBe(0);
      // Plain lines off a terminal: one per queue pass, items reviewed out of those due and bytes reclaimed.
      expect(run.stderr).toMatch(/^gc: links: 3\/3 items, done in /m);
      expect(run.stderr).toMatch(/^gc: blobs: 1\/1 items, 1000 B, done in /m);
      expect(run.stderr).not.toMatch(/\r|\x1b/);
      expect(run.stdout).toMatch(/gc run: reviewed \d+ items in \d+ batches; deleted 2 \(1000 B\)/);
      expect(run.stdout).toMatch(/application\/octet-stream: 1 \(1000 B\)/);
      expect((await c.call('HEAD', `/v2/cli/app/blobs/${loose.digest}`)).status).toBe(404);
      expect((await c.call('GET', '/v2/cli/app/manifests/v1', { headers: { accept: kept.mediaType } })).status).toBe(200);

      const after = JSON.parse(gc(ENV, 'status', '--url', reg.url).stdout);
      expect(after.queues.every((q: { due: number }) => q.due === 0)).toBe(true);
      expect(after.counters).toMatchObject({ deleted: 2, bytes: 1000 });
      expect(gc({ ...ENV, LADING_HTTP_SECRET: 'another-secret-0123456789' }, 'status', '--url', reg.url).code).toBe(1); // 401

      // Left garbage, then no registry running: `gc run` opens the embedded database itself.
      expect((await c.pushBlob('cli/app', randomBlob(500))).status).toBe(201);
      await c.close();
      await reg.stop();
      reg = undefined;
      const offline = gc({ ...ENV, LADING_DATA_DIR: dataDir, LADING_HTTP_ADDR: '127.0.0.1:1' }, 'run');
      expect(offline.stderr).toMatch(/no registry answers at .*running the collector in this process/);
      expect(offline.code).toBe(0);
      expect(offline.stdout).toMatch(/deleted 2 \(500 B\)/);
      expect(gc({ ...ENV, LADING_DATA_DIR: dataDir, LADING_HTTP_ADDR: '127.0.0.1:1' }, 'status').code).toBe(1);
    } finally {
      await c.close().catch(() => undefined);
      await reg?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('runs a pass on PostgreSQL in its own process, beside any running workers', async () => {
    const db = await createTestDatabase();
    const reg = await startEmbedded({ ...ENV, LADING_DATABASE_URL: db.url });
    const c = new RegistryTestClient(reg.url);
    try {
      expect((await c.pushBlob('cli/pg', randomBlob(700))).status).toBe(201);
      // The registry keeps running: a second collector on the same database is safe.
      const run = gc({ ...ENV, LADING_DATABASE_URL: db.url, LADING_DATA_DIR: reg.dataDir, LADING_SERVICES_GCWORKER_URL: 'http://127.0.0.1:1' }, 'run');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/deleted 2 \(700 B\)/);
      const status = JSON.parse(gc(ENV, 'status', '--url', reg.url).stdout);
      expect(status.runs).toEqual([]); // a one-off pass records no worker run; the queues are empty
      expect(status.queues.every((q: { depth: number }) => q.depth === 0)).toBe(true);
    } finally {
      await c.close();
      await reg.stop();
      rmSync(reg.dataDir, { recursive: true, force: true });
      await db.drop();
    }
  });
});
