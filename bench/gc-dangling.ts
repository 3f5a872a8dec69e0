/**
 * A backlog of dangling blobs for the GC benchmarks (bench/gc-deletes.ts, bench/gc-load.ts), made
 * fast but honestly: the bytes are real objects in storage, at the keys the storage layout gives
 * them (Lading's, or the reference registry's for its offline GC), and the review rows come from
 * the real triggers — each blob is linked into a repository and unlinked again in one
 * transaction, so `gc_blob_review_queue` fills by `gc_link_deleted` and nothing else is queued.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Client as MinioClient } from 'minio';
import { Client as PgClient } from 'pg';
import { blobDataKey } from '@lading/storage';
import { testMinioClient } from '../test/support/s3';

/** One dangling blob: its digest and bytes (whose sha256 is the digest). */
export interface DanglingBlob {
  digest: string;
  bytes: Buffer;
}

/** `count` distinct blobs of `size` bytes each; `salt` keeps two backlogs apart. */
export function danglingBlobs(count: number, size: number, salt: string): DanglingBlob[] {
  const out: DanglingBlob[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = Buffer.alloc(size, i % 251);
    bytes.write(`lading gc bench ${salt} ${i}\n`, 0, 'utf8');
    out.push({ digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes });
  }
  return out;
}

/** Where the bench writes objects: a directory, or a prefix of the test bucket. */
export type ObjectSink = { kind: 'filesystem'; root: string } | { kind: 's3'; prefix: string };

/** Writes `key` → bytes into `sink`, `concurrency` at a time. */
export async function writeObjects(sink: ObjectSink, objects: { key: string; bytes: Buffer }[], concurrency = 64): Promise<void> {
  const minio: MinioClient | undefined = sink.kind === 's3' ? testMinioClient() : undefined;
  const bucket = process.env.LADING_TEST_S3_BUCKET!;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < objects.length; i = next++) {
      const { key, bytes } = objects[i]!;
      if (sink.kind === 'filesystem') {
        const path = join(sink.root, key);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, bytes);
      } else {
        await minio!.putObject(bucket, `${sink.prefix.replace(/\/+$/, '')}/${key}`, bytes, bytes.length);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Lading's storage key of each blob's bytes. */
export function ladingObjects(blobs: DanglingBlob[]): { key: string; bytes: Buffer }[] {
  return blobs.map((b) => ({ key: blobDataKey(b.digest), bytes: b.bytes }));
}

/** The reference registry's key of each blob's bytes (`docker/registry/v2/blobs/sha256/ab/<hex>/data`). */
export function referenceObjects(blobs: DanglingBlob[]): { key: string; bytes: Buffer }[] {
  return blobs.map((b) => ({ key: `docker/registry/v2/${blobDataKey(b.digest)}`, bytes: b.bytes }));
}

/**
 * Inserts the blob rows of `blobs` into the Lading database at `databaseUrl`, links each into
 * repository `repository` and removes the links, `chunk` blobs a transaction (all in one when
 * `chunk` ≥ the count, so the whole backlog falls due at one commit). The `gc_link_deleted`
 * trigger queues each blob for review, due `gc_settings.review_after` later — or at once with
 * `dueNow`: the transaction sets the delay to 0 for its own triggers and puts it back before it
 * commits, so no other transaction ever sees the change (the registry's pushes keep their delay).
 */
export async function queueDanglingBlobs(databaseUrl: string, blobs: DanglingBlob[], repository: string, options: { chunk?: number; dueNow?: boolean } = {}): Promise<void> {
  const chunk = options.chunk ?? 10_000;
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ id: string }>(
      'INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id',
      [repository],
    );
    const repositoryId = rows[0]!.id;
    for (let i = 0; i < blobs.length; i += chunk) {
      const part = blobs.slice(i, i + chunk);
      const digests = part.map((b) => b.digest);
      const sizes = part.map((b) => b.bytes.length);
      await pg.query('BEGIN');
      try {
        const { rows: delay } = options.dueNow ? await pg.query<{ review_after: string }>('SELECT review_after::text FROM gc_settings FOR UPDATE') : { rows: [] };
        if (options.dueNow) await pg.query("UPDATE gc_settings SET review_after = interval '0'");
        await pg.query('INSERT INTO blobs (digest, size) SELECT * FROM unnest($1::text[], $2::bigint[])', [digests, sizes]);
        await pg.query('INSERT INTO repository_blobs (repository_id, digest) SELECT $1, unnest($2::text[])', [repositoryId, digests]);
        await pg.query('DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2::text[])', [repositoryId, digests]);
        if (options.dueNow) await pg.query('UPDATE gc_settings SET review_after = $1::interval', [delay[0]!.review_after]);
        await pg.query('COMMIT');
      } catch (e) {
        await pg.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await pg.end();
  }
}

/** Rows in `gc_blob_review_queue` and in `blobs` of the database at `databaseUrl`. */
export async function backlogDepth(databaseUrl: string): Promise<{ queued: number; blobs: number }> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ queued: string; blobs: string }>(
      'SELECT (SELECT count(*) FROM gc_blob_review_queue) AS queued, (SELECT count(*) FROM blobs) AS blobs',
    );
    return { queued: Number(rows[0]!.queued), blobs: Number(rows[0]!.blobs) };
  } finally {
    await pg.end();
  }
}

/** Counts of the S3 requests the `minio` client of this process made, by kind. */
export class S3RequestCounter {
  readonly counts = new Map<string, number>();
  private restore?: () => void;

  /**
   * Starts counting: wraps the one method every request of the `minio` client goes through
   * (`makeRequestStreamAsync`), so each HTTP request is counted once, retries included.
   */
  install(): this {
    let proto: object | null = MinioClient.prototype;
    while (proto && !Object.prototype.hasOwnProperty.call(proto, 'makeRequestStreamAsync')) proto = Object.getPrototypeOf(proto);
    if (!proto) throw new Error('minio client internals changed: no makeRequestStreamAsync to count requests by');
    const target = proto as { makeRequestStreamAsync: (options: { method: string; query?: string }, ...rest: unknown[]) => Promise<unknown> };
    const original = target.makeRequestStreamAsync;
    const counts = this.counts;
    target.makeRequestStreamAsync = function (this: unknown, options, ...rest) {
      const kind = `${options.method}${/(^|&)delete(=|&|$)/.test(options.query ?? '') ? ' ?delete' : ''}`;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      return original.call(this, options, ...rest);
    };
    this.restore = () => (target.makeRequestStreamAsync = original);
    return this;
  }

  /** Forgets the counts so far. */
  reset(): void {
    this.counts.clear();
  }

  /** All requests counted. */
  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }

  /** Stops counting. */
  uninstall(): void {
    this.restore?.();
  }
}
