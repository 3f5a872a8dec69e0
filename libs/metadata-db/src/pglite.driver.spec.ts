import type { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { openMetadataDb } from './metadata-db';
import { PgliteThread } from './pglite.driver';
import { METADATA_MIGRATIONS } from './migrations';
import { managerQueryer } from './queryer';
import { parseByteaHex, serializeByteaParam } from './pglite-bytea';

const runSql = <T = Record<string, unknown>>(m: EntityManager, text: string, params: unknown[] = []) =>
  managerQueryer(m).query<T>(text, params);

describe('PGlite metadata database', () => {
  let ds: DataSource;
  beforeAll(async () => {
    ds = await openMetadataDb({ pgliteDir: 'memory://' });
  }, 30_000);
  afterAll(async () => {
    await ds.destroy();
  });

  it('runs the migrations', async () => {
    const { rows } = await runSql<{ n: number }>(ds.manager, 'SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows[0].n).toBe(METADATA_MIGRATIONS.length);
  });

  it('keeps a rolled-back transaction invisible to concurrent work', async () => {
    const inTx = ds.transaction(async (m) => {
      await runSql(m, `INSERT INTO repositories (name) VALUES ('rolled/back')`);
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('abort');
    });
    // Concurrently, outside the transaction: must not see the uncommitted row, must not be undone.
    const outside = (async () => {
      const seen = await runSql(ds.manager, `SELECT 1 FROM repositories WHERE name = 'rolled/back'`);
      await runSql(ds.manager, `INSERT INTO repositories (name) VALUES ('kept')`);
      return seen.rows.length;
    })();
    await expect(inTx).rejects.toThrow('abort');
    expect(await outside).toBe(0);
    const { rows } = await runSql<{ name: string }>(ds.manager, `SELECT name FROM repositories ORDER BY name`);
    expect(rows.map((r) => r.name)).toEqual(['kept']);
  });

  it('reports affected rows and parses bigint as number', async () => {
    await runSql(ds.manager, `INSERT INTO blobs (digest, size) VALUES ('sha256:x', 9007199254740991)`);
    const upd = await runSql(ds.manager, `UPDATE blobs SET size = 5 WHERE digest = 'sha256:x'`);
    expect(upd.affected).toBe(1);
    const { rows } = await runSql<{ size: number }>(ds.manager, `SELECT size FROM blobs WHERE digest = 'sha256:x'`);
    expect(rows[0].size).toBe(5);
  });

  describe('prepared statements', () => {
    const count = (m: EntityManager, name: string) =>
      runSql<{ n: number }>(m, 'SELECT count(*)::int AS n FROM repositories WHERE name = $1', [name]).then((r) => r.rows[0].n);

    it('answers a repeated statement from its prepared form with each call\'s own parameters and types', async () => {
      for (let i = 0; i < 12; i++) {
        await runSql(ds.manager, 'INSERT INTO repositories (name) VALUES ($1)', [`prepared/${i}`]);
        expect(await count(ds.manager, `prepared/${i}`)).toBe(1);
      }
      const { rows } = await runSql<{ names: string[]; none: null; on: boolean }>(ds.manager, 'SELECT array_agg(name ORDER BY name) AS names, $2::text AS none, $3::boolean AS on FROM repositories WHERE name = ANY($1::text[])', [
        ['prepared/3', 'prepared/11', 'absent'],
        null,
        true,
      ]);
      expect(rows[0]).toEqual({ names: ['prepared/11', 'prepared/3'], none: null, on: true });
      const { rows: prepared } = await runSql<{ n: number }>(ds.manager, "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO repositories (name) VALUES ($1)'", []);
      expect(prepared[0].n).toBe(1);
    });

    it('recovers from a failed statement, in and out of a transaction', async () => {
      const insert = 'INSERT INTO repositories (name) VALUES ($1)';
      await runSql(ds.manager, insert, ['prepared/dup']);
      await expect(runSql(ds.manager, insert, ['prepared/dup'])).rejects.toMatchObject({ driverError: { code: '23505' } });
      await expect(
        ds.transaction(async (m) => {
          await runSql(m, insert, ['prepared/in-tx']);
          await runSql(m, insert, ['prepared/dup']);
        }),
      ).rejects.toMatchObject({ driverError: { code: '23505' } });
      expect(await count(ds.manager, 'prepared/in-tx')).toBe(0);
      await ds.transaction((m) => runSql(m, insert, ['prepared/after']));
      expect(await count(ds.manager, 'prepared/after')).toBe(1);
    });

    it('prepares a statement afresh when a schema change alters what it returns', async () => {
      await runSql(ds.manager, 'CREATE TABLE prepared_probe (a int)');
      await runSql(ds.manager, 'INSERT INTO prepared_probe VALUES (1)');
      const select = 'SELECT * FROM prepared_probe WHERE a = $1';
      expect((await runSql(ds.manager, select, [1])).rows).toEqual([{ a: 1 }]);
      await runSql(ds.manager, 'ALTER TABLE prepared_probe ADD COLUMN b int DEFAULT 2');
      // PostgreSQL refuses a cached plan whose result type changed; the next call prepares again.
      await expect(runSql(ds.manager, select, [1])).rejects.toMatchObject({ driverError: { code: '0A000' } });
      expect((await runSql(ds.manager, select, [1])).rows).toEqual([{ a: 1, b: 2 }]);
    });

    it('keeps a bounded number of statements prepared', async () => {
      for (let i = 0; i < 300; i++) expect((await runSql<{ v: number }>(ds.manager, `SELECT $1::int + ${i} AS v`, [1])).rows[0].v).toBe(i + 1);
      const { rows } = await runSql<{ n: number }>(ds.manager, 'SELECT count(*)::int AS n FROM pg_prepared_statements', []);
      expect(rows[0].n).toBeLessThanOrEqual(256);
    });
  });

  describe('bytea', () => {
    let repositoryId: number;
    beforeAll(async () => {
      const { rows } = await runSql<{ id: number }>(
        ds.manager,
        `INSERT INTO repositories (name) VALUES ('bytea') RETURNING id`,
      );
      repositoryId = rows[0].id;
    });

    it('stores every byte value as a binary parameter and reads it back as a Buffer', async () => {
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      // A view into a larger buffer must send only its own bytes.
      const view = Buffer.concat([Buffer.from('head'), all, Buffer.from('tail')]).subarray(4, 4 + 256);
      const whole = Buffer.alloc(8192, 7); // spans its own ArrayBuffer: sent as that ArrayBuffer
      for (const [digest, bytes] of [
        ['all', all],
        ['view', view],
        ['whole', whole],
        ['empty', Buffer.alloc(0)],
      ] as const) {
        await runSql(
          ds.manager,
          `INSERT INTO manifests (repository_id, digest, media_type, payload, size) VALUES ($1, $2, 'x', $3, $4)`,
          [repositoryId, digest, bytes, bytes.length],
        );
        const { rows } = await runSql<{ payload: Buffer; n: number }>(
          ds.manager,
          'SELECT payload, octet_length(payload) AS n FROM manifests WHERE digest = $1',
          [digest],
        );
        expect(Buffer.isBuffer(rows[0].payload)).toBe(true);
        expect(rows[0].n).toBe(bytes.length);
        expect(rows[0].payload.equals(bytes)).toBe(true);
      }
    });

    it('serializes bytes without text and parses the hex output', () => {
      expect(serializeByteaParam('\\x00ff')).toBe('\\x00ff');
      const b = Buffer.alloc(10_000, 1);
      expect(serializeByteaParam(b)).toBe(b.buffer);
      const small = Buffer.from('ab'); // pooled: a view of a larger ArrayBuffer
      expect(serializeByteaParam(small)).toBe(small);
      expect(parseByteaHex('\\x00ff10')).toEqual(Buffer.from([0, 255, 16]));
      expect(() => parseByteaHex('escape')).toThrow(/hex/);
    });
  });

  describe('on its own thread', () => {
    it('leaves the event loop free while a statement runs', async () => {
      // In process, WebAssembly would hold the loop for the whole statement: the timer could only
      // fire after the query's answer. On the thread the timer fires while PostgreSQL sleeps.
      const order: string[] = [];
      const timer = new Promise<void>((resolve) => setTimeout(() => resolve(void order.push('timer')), 10));
      const query = runSql(ds.manager, 'SELECT pg_sleep(1)').then(() => void order.push('query'));
      await Promise.all([timer, query]);
      expect(order).toEqual(['timer', 'query']);
    });

    it("carries PostgreSQL's error fields across the thread", async () => {
      await runSql(ds.manager, `INSERT INTO repositories (name) VALUES ('thread/dup')`);
      await expect(runSql(ds.manager, 'INSERT INTO repositories (name) VALUES ($1)', ['thread/dup'])).rejects.toMatchObject({
        driverError: { code: '23505', constraint: expect.any(String), detail: expect.stringContaining('thread/dup'), severity: 'ERROR' },
      });
      await expect(runSql(ds.manager, 'SELECT 1/0')).rejects.toMatchObject({ driverError: { code: '22012', message: 'division by zero' } });
    });

    it('refuses a parameter structured clone cannot carry, and keeps working', async () => {
      await expect(runSql(ds.manager, 'SELECT $1::text AS v', [() => 1])).rejects.toThrow();
      expect((await runSql<{ v: string }>(ds.manager, 'SELECT $1::text AS v', ['after'])).rows).toEqual([{ v: 'after' }]);
    });

    it("sends a view of a pooled Buffer as the view's bytes", async () => {
      const small = Buffer.from('abc'); // a slice of Node's shared 8 KiB pool
      expect(small.buffer.byteLength).toBeGreaterThan(small.length);
      const { rows } = await runSql<{ n: number; hex: string }>(ds.manager, "SELECT octet_length($1::bytea) AS n, encode($1::bytea, 'hex') AS hex", [small]);
      expect(rows[0]).toEqual({ n: 3, hex: '616263' });
    });

    it('answers with an error, not a hang, once the thread is closed or has died', async () => {
      const closed = await PgliteThread.start('memory://');
      expect((await closed.query('SELECT $1::int + 1 AS v', [1])).rows).toEqual([{ v: 2 }]);
      await closed.close();
      await expect(closed.query('SELECT 1')).rejects.toThrow(/closed/);

      const dying = await PgliteThread.start('memory://');
      const out = dying.query('SELECT pg_sleep(5)');
      await (dying as unknown as { worker: Worker }).worker.terminate();
      await expect(out).rejects.toThrow(/thread stopped/);
      await expect(dying.query('SELECT 1')).rejects.toThrow(/thread stopped/);
    }, 60_000);

    it('does not keep a process alive once no statement is out', () => {
      // A child that opens the database, queries it and never closes it must still exit.
      const script = `require(${JSON.stringify(join(__dirname, 'metadata-db.ts'))}).openMetadataDb({ pgliteDir: 'memory://', migrate: false }).then((ds) => ds.query('SELECT 41 + 1 AS v')).then((rows) => console.log(JSON.stringify(rows)))`;
      const r = spawnSync(process.execPath, ['-r', require.resolve('@swc-node/register'), '-e', script], {
        encoding: 'utf8',
        timeout: 90_000,
        env: { ...process.env, NODE_OPTIONS: '', SWC_NODE_PROJECT: join(__dirname, '../../../tsconfig.base.json') },
      });
      expect(r.error).toBeUndefined();
      expect(r.stdout.trim()).toBe('[{"v":42}]');
      expect(r.status).toBe(0);
    }, 120_000);
  });
});

describe('PGlite data folder lock', () => {
  it('refuses a second open of the same folder while the first is open, and allows it after close', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'lading-lock-'));
    try {
      const first = await openMetadataDb({ pgliteDir: join(dir, 'db') });
      await expect(openMetadataDb({ pgliteDir: join(dir, 'db') })).rejects.toThrow(/in use by process/);
      await first.destroy();
      const again = await openMetadataDb({ pgliteDir: join(dir, 'db') });
      await again.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
