import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An upload session remembers the W3C `traceparent` of the request that opened it, so that the
 * request that closes it (the PUT, on any replica) links its span to the opening one.
 */
export class UploadTrace1765700000000 implements MigrationInterface {
  name = 'UploadTrace1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE upload_sessions ADD COLUMN traceparent text');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE upload_sessions DROP COLUMN traceparent');
  }
}
