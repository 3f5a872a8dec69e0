import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An upload session records the ordered list of its stored parts (`[{name, size, etag?}]`, as
 * the storage driver reported them), written with the committed size in one statement under the
 * writer lease: storage has no append, so this list, not a file's length, is what the upload
 * holds. Sessions opened before this migration stored their bytes in the old single-file layout,
 * which no driver reads any more: they are removed (their clients start a new upload), and
 * upload purging removes their orphaned bytes.
 */
export class UploadParts1765000000000 implements MigrationInterface {
  name = 'UploadParts1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DELETE FROM upload_sessions;
      ALTER TABLE upload_sessions ADD COLUMN parts jsonb NOT NULL DEFAULT '[]'::jsonb;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DELETE FROM upload_sessions;
      ALTER TABLE upload_sessions DROP COLUMN parts;
    `);
  }
}
