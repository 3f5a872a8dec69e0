import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An upload session may carry a saved sha256 state of its first `hash_offset` bytes (opaque to
 * the database, tagged with the implementation that wrote it: only that build can load it), so a
 * chunk or the final PUT that lands on another process continues the hash instead of re-reading
 * every stored byte. Written with the committed size, under the writer lease; a session's
 * recorded bytes never change, so a state once written stays true for its offset.
 */
export class UploadHashState1765100000000 implements MigrationInterface {
  name = 'UploadHashState1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE upload_sessions
        ADD COLUMN hash_impl text,
        ADD COLUMN hash_offset bigint,
        ADD COLUMN hash_state bytea,
        ADD CONSTRAINT upload_sessions_hash_state_whole
          CHECK ((hash_impl IS NULL) = (hash_state IS NULL) AND (hash_state IS NULL) = (hash_offset IS NULL)),
        ADD CONSTRAINT upload_sessions_hash_offset_within CHECK (hash_offset IS NULL OR (hash_offset >= 0 AND hash_offset <= size));
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE upload_sessions
        DROP CONSTRAINT upload_sessions_hash_offset_within,
        DROP CONSTRAINT upload_sessions_hash_state_whole,
        DROP COLUMN hash_state,
        DROP COLUMN hash_offset,
        DROP COLUMN hash_impl;
    `);
  }
}
