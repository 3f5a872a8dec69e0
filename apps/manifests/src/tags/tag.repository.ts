import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { findRepositoryId, runSql } from '@lading/metadata-db';

/** Keyset-paginated listings of tag names and repository names (byte order, like the reference registry). */
@Injectable()
export class TagRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Whether repository `name` exists. */
  async repositoryExists(name: string): Promise<boolean> {
    return (await findRepositoryId(this.ds.manager, name)) !== undefined;
  }

  /** Up to `limit` tag names of `name` after `last` (exclusive), in byte order. */
  async listTags(name: string, limit: number, last?: string): Promise<string[]> {
    const { rows } = await runSql<{ name: string }>(
      this.ds.manager,
      `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
        WHERE r.name = $1 AND ($2::text IS NULL OR t.name > $2::text COLLATE "C")
        ORDER BY t.name COLLATE "C" LIMIT $3`,
      [name, last ?? null, limit],
    );
    return rows.map((r) => r.name);
  }

  /** Up to `limit` repository names after `last` (exclusive) that hold at least one manifest or blob. */
  async listRepositories(limit: number, last?: string): Promise<string[]> {
    const { rows } = await runSql<{ name: string }>(
      this.ds.manager,
      `SELECT r.name FROM repositories r
        WHERE ($1::text IS NULL OR r.name > $1::text COLLATE "C")
          AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
               OR EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repository_id = r.id))
        ORDER BY r.name COLLATE "C" LIMIT $2`,
      [last ?? null, limit],
    );
    return rows.map((r) => r.name);
  }
}
