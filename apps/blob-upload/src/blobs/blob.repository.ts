import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { RequestContext } from '@lading/contracts';
import { appendOutboxEvent, ensureRepository, findRepositoryId, runSql } from '@lading/metadata-db';

/** A blob as a repository sees it. */
export interface LinkedBlob {
  digest: string;
  size: number;
}

/** The blob rows: blobs, their links to repositories, and the events of both. */
@Injectable()
export class BlobRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** The blob if it is linked to repository `name`; undefined otherwise (it may exist elsewhere). */
  async findLinked(name: string, digest: string): Promise<LinkedBlob | undefined> {
    const { rows } = await runSql<LinkedBlob>(
      this.ds.manager,
      `SELECT b.digest, b.size FROM repository_blobs rb
         JOIN repositories r ON r.id = rb.repository_id
         JOIN blobs b ON b.digest = rb.digest
        WHERE r.name = $1 AND rb.digest = $2`,
      [name, digest],
    );
    return rows[0];
  }

  /**
   * Records a stored blob and links it to `name` in one transaction, with its push event.
   * `extra` runs inside the same transaction (e.g. to drop the upload session).
   */
  async linkBlob(
    name: string,
    blob: LinkedBlob,
    request: RequestContext,
    options: { action: 'push' | 'mount'; fromRepository?: string; url: string; extra?: (m: EntityManager) => Promise<void> },
  ): Promise<void> {
    await this.ds.transaction(async (m) => {
      const repositoryId = await ensureRepository(m, name);
      await runSql(m, 'INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [blob.digest, blob.size]);
      await runSql(
        m,
        'INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [repositoryId, blob.digest],
      );
      if (options.extra) await options.extra(m);
      await appendOutboxEvent(m, {
        action: options.action,
        repository: name,
        target: {
          mediaType: 'application/octet-stream',
          digest: blob.digest,
          size: blob.size,
          length: blob.size,
          url: options.url,
          ...(options.fromRepository ? { fromRepository: options.fromRepository } : {}),
        },
        request,
      });
    });
  }

  /** Removes the link of `digest` from `name`; false when there was none. The bytes stay for GC. */
  async unlinkBlob(name: string, digest: string, request: RequestContext, url: string): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const repositoryId = await findRepositoryId(m, name);
      if (repositoryId === undefined) return false;
      const { rows } = await runSql<{ size: number }>(
        m,
        `DELETE FROM repository_blobs rb USING blobs b
          WHERE rb.repository_id = $1 AND rb.digest = $2 AND b.digest = rb.digest RETURNING b.size`,
        [repositoryId, digest],
      );
      if (rows.length === 0) return false;
      await appendOutboxEvent(m, {
        action: 'delete',
        repository: name,
        target: { digest, size: rows[0].size, length: rows[0].size, mediaType: 'application/octet-stream', url },
        request,
      });
      return true;
    });
  }
}
