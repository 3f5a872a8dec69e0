import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { ensureRepository, runSql } from '@lading/metadata-db';

/** An upload session as the database knows it: its committed size is the source of truth. */
export interface UploadSession {
  id: string;
  repository: string;
  size: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The upload_sessions rows. */
@Injectable()
export class UploadRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Creates the session row (and the repository row if needed). */
  async insertSession(id: string, name: string): Promise<void> {
    await this.ds.transaction(async (m) => {
      const repositoryId = await ensureRepository(m, name);
      await runSql(m, 'INSERT INTO upload_sessions (id, repository_id) VALUES ($1, $2)', [id, repositoryId]);
    });
  }

  /** The session `id` of repository `name`, or undefined. */
  async findSession(name: string, id: string): Promise<UploadSession | undefined> {
    const { rows } = await runSql<UploadSession>(
      this.ds.manager,
      `SELECT s.id, r.name AS repository, s.size, s.created_at AS "createdAt", s.updated_at AS "updatedAt"
         FROM upload_sessions s JOIN repositories r ON r.id = s.repository_id
        WHERE s.id = $1 AND r.name = $2`,
      [id, name],
    );
    return rows[0];
  }

  /** Moves the committed size from `from` to `to`; false when another writer moved it first. */
  async advanceSize(id: string, from: number, to: number): Promise<boolean> {
    const { affected } = await runSql(
      this.ds.manager,
      'UPDATE upload_sessions SET size = $3, updated_at = now() WHERE id = $1 AND size = $2',
      [id, from, to],
    );
    return affected === 1;
  }

  /** Deletes the session row, through `m` when given (the commit's transaction). */
  async deleteSession(id: string, m: EntityManager = this.ds.manager): Promise<boolean> {
    const { affected } = await runSql(m, 'DELETE FROM upload_sessions WHERE id = $1', [id]);
    return affected === 1;
  }

  /** Sessions not touched since `before`, oldest first, for purging. */
  async findStale(before: Date, limit: number): Promise<{ id: string }[]> {
    const { rows } = await runSql<{ id: string }>(
      this.ds.manager,
      'SELECT id FROM upload_sessions WHERE updated_at < $1 ORDER BY updated_at LIMIT $2',
      [before, limit],
    );
    return rows;
  }

  /** Whether a session row exists (purging uses it to tell orphaned upload bytes apart). */
  async exists(id: string): Promise<boolean> {
    const { rows } = await runSql(this.ds.manager, 'SELECT 1 FROM upload_sessions WHERE id = $1', [id]);
    return rows.length > 0;
  }
}
