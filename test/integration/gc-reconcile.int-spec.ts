import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { MetadataDb, ReconcileStore, openMetadataDb } from '@lading/metadata-db';
import { S3BlobStorage, blobDataKey } from '@lading/storage';
import { RegistryTestClient, commitBytes, eventually, pushImageAndBlob } from '@lading/testing';
import { runLading, startEmbedded, startSplit, type SplitStack } from '../support/registry-processes';
import { purgeS3Root, s3RegistryEnv, testS3Options } from '../support/s3';

/** Exit status of `lading gc reconcile` when rows whose bytes are missing were found. */
const MISSING_BYTES = 3;

/**
 * `lading gc reconcile` as a process, against the database and the MinIO bucket of a split
 * registry that keeps running: it reports an object no row knows and a row whose bytes were
 * deleted behind the database's back, changes nothing with --dry-run, deletes only that orphan
 * and only once it is older than gc.reviewafter (the storage's clock), never touches rows, and
 * waits for a push that is inserting the orphan's row instead of deleting its bytes.
 */
describe('lading gc reconcile on PostgreSQL and MinIO, next to a running split registry', () => {
  const rootDirectory = `gc-reconcile/${randomUUID()}`;
  const storage = new S3BlobStorage(testS3Options(rootDirectory));
  let stack: SplitStack;
  let pg: Client;
  const sessionId = randomUUID();

  beforeAll(async () => {
    stack = await startSplit({ withWorkers: false, env: s3RegistryEnv(rootDirectory) });
    pg = new Client({ connectionString: stack.databaseUrl });
    await pg.connect();
  }, 180_000);

  afterAll(async () => {
    await pg?.end();
    await stack?.stop();
    await purgeS3Root(rootDirectory);
  });

  /** `lading gc reconcile <args>` with the stack's configuration, plus `env`. */
  const reconcile = (args: string[], env: Record<string, string> = {}) =>
    runLading(['gc', 'reconcile', ...args], { ...stack.env, ...env });

  const rowCount = async () => Number((await pg.query('SELECT count(*) AS n FROM blobs')).rows[0].n);

  it('reports an orphan and a row without bytes; --dry-run and a young orphan change nothing; --delete past the review delay removes only the orphan', async () => {
    const { image, blob: lost } = await pushImageAndBlob(stack.url, 'reconcile/app', 2048);
    const orphan = await commitBytes(storage, Buffer.from('bytes a crash left before their row'));
    await storage.deleteBlob(lost.digest);
    const keys = await storage.keys();
    const rows = await rowCount();

    const first = await reconcile(['--json']);
    expect(first.code).toBe(MISSING_BYTES);
    const report = JSON.parse(first.stdout);
    expect(report.mode).toBe('report');
    expect(report.orphans).toMatchObject({
      count: 1,
      bytes: 35,
      items: [{ digest: orphan, size: 35, status: 'young' }],
    });
    expect(report.missing).toMatchObject({
      count: 1,
      bytes: 2048,
      items: [{ digest: lost.digest, size: 2048, storedSize: null }],
    });
    expect(report.storage.count).toBe(4); // config, two layers, the orphan
    expect(report.database.count).toBe(4); // config, two layers, the lost blob
    expect(first.stderr).toContain('reconcile: comparing storage with the database: 4/4 items');
    expect(first.stderr).toContain('1 orphans (35 B)');

    const dry = await reconcile(['--dry-run', '--delete'], { LADING_GC_REVIEWAFTER: '0s' });
    expect(dry.code).toBe(MISSING_BYTES);
    expect(dry.stdout).toContain(`${orphan}  35 B`);
    expect(dry.stdout).toContain('older than the review delay');
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect(await storage.keys()).toEqual(keys);

    const young = await reconcile(['--delete', '--json']);
    expect(JSON.parse(young.stdout)).toMatchObject({
      mode: 'delete',
      deleted: { count: 0 },
      orphans: { items: [{ status: 'young' }] },
    });
    expect(await storage.keys()).toEqual(keys);

    const old = await reconcile(['--delete', '--json'], { LADING_GC_REVIEWAFTER: '0s' });
    expect(old.code).toBe(MISSING_BYTES);
    expect(JSON.parse(old.stdout)).toMatchObject({
      deleted: { count: 1, bytes: 35 },
      orphans: { items: [{ digest: orphan, status: 'deleted' }] },
    });
    expect(await storage.keys()).toEqual(keys.filter((k) => k !== blobDataKey(orphan)));
    expect(await rowCount()).toBe(rows);

    // The registry, running all along, still serves what it has; the lost blob stays reported.
    const after = new RegistryTestClient(stack.url);
    try {
      expect((await after.call('GET', `/v2/reconcile/app/manifests/v1`)).status).toBe(200);
      expect(
        (
          await after.call('GET', `/v2/reconcile/app/blobs/${image.layers[0].digest}`, {
            headers: { range: 'bytes=0-0' },
          })
        ).status,
      ).toBeLessThan(400);
    } finally {
      await after.close();
    }
    const last = await reconcile([]);
    expect(last.code).toBe(MISSING_BYTES);
    expect(last.stdout).toContain('objects no row knows (orphans): 0');
    expect(last.stdout).toContain(`${lost.digest}  2.0 KiB`);
  });

  it('waits for a transaction inserting the orphan’s row, then keeps its bytes', async () => {
    const content = Buffer.from('bytes whose row a push is writing right now');
    const digest = await commitBytes(storage, content);
    const push = new Client({ connectionString: stack.databaseUrl });
    await push.connect();
    try {
      // A push between its storage commit and its row's commit.
      await push.query('BEGIN');
      await push.query('INSERT INTO blobs (digest, size) VALUES ($1, $2)', [digest, content.length]);
      const appName = `lading-reconcile-${randomUUID().slice(0, 8)}`;
      const url = new URL(stack.databaseUrl);
      url.searchParams.set('application_name', appName);
      const running = reconcile(['--delete', '--json'], {
        LADING_GC_REVIEWAFTER: '0s',
        LADING_DATABASE_URL: url.toString(),
      });
      await eventually(
        async () =>
          (
            await pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [
              appName,
            ])
          ).rowCount! > 0,
        60_000,
        'reconcile to wait for the push’s transaction',
      );
      await push.query('COMMIT');
      const done = await running;
      const report = JSON.parse(done.stdout);
      expect(report).toMatchObject({ deleted: { count: 0 }, orphans: { items: [{ digest, status: 'known' }] } });
      expect(done.code).toBe(report.missing.count > 0 ? MISSING_BYTES : 0);
      expect(await storage.statBlob(digest)).toEqual({ size: content.length });
    } finally {
      await push.query('ROLLBACK').catch(() => undefined);
      await push.end();
    }
  });

  it.each([
    [
      'a single-request upload pinning it',
      (digest: string) => ({
        sql: 'INSERT INTO blob_commit_pins (id, digest) VALUES ($1, $2)',
        params: [randomUUID(), digest],
      }),
    ],
    [
      'a chunked upload recording its commit',
      (digest: string) => ({
        sql: 'UPDATE upload_sessions SET committing_digest = $2 WHERE id = $1',
        params: [sessionId, digest],
      }),
    ],
  ])(
    'holds off %s while the delete runs: the upload goes on once the bytes are gone',
    async (_name, announce) => {
      const db = new MetadataDb(await openMetadataDb({ url: stack.databaseUrl, poolSize: 2, migrate: false }));
      const upload = new Client({ connectionString: stack.databaseUrl });
      await upload.connect();
      try {
        await pg.query('INSERT INTO upload_sessions (id, repository) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
          sessionId,
          'reconcile/app',
        ]);
        const orphan = await commitBytes(
          storage,
          Buffer.from(`an orphan an upload of the same content announces: ${randomUUID()}`),
        );
        let announced: Promise<unknown> | undefined;
        let finished = false;
        const outcomes = await new ReconcileStore(db).deleteUnknownBlobs(
          [{ digest: orphan, size: 1 }],
          async (digests) => {
            const { sql, params } = announce(orphan);
            announced = upload.query(sql, params).then(() => (finished = true));
            await eventually(
              async () =>
                (await pg.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1", [sql]))
                  .rowCount! > 0,
              30_000,
              'the upload to wait for the delete',
            );
            expect(finished).toBe(false);
            await storage.deleteBlobs(digests);
          },
        );
        await announced;
        expect(outcomes.get(orphan)).toBe('deleted');
        // The upload announced once the bytes were gone: its storage commit, next, finds none and writes them.
        expect(await storage.statBlob(orphan)).toBeNull();
      } finally {
        await upload.end();
        await db.close();
      }
    },
  );
});

describe('lading gc reconcile and the embedded registry', () => {
  it('refuses while the registry runs on the data folder, saying what to do, and runs once it stopped', async () => {
    const registry = await startEmbedded();
    try {
      const busy = await runLading(['gc', 'reconcile'], { LADING_DATA_DIR: registry.dataDir });
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain(`in use by process ${registry.proc.pid}`);
      expect(busy.stderr).toContain('Stop the registry');
      expect(busy.stdout).toBe('');
    } finally {
      await registry.stop();
    }
    try {
      const idle = await runLading(['gc', 'reconcile'], { LADING_DATA_DIR: registry.dataDir });
      expect(idle.code).toBe(0);
      expect(idle.stdout).toContain('objects no row knows (orphans): 0');
    } finally {
      rmSync(registry.dataDir, { recursive: true, force: true });
    }
  });
});
