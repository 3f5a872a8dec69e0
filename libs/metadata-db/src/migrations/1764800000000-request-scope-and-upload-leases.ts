import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Outbox rows carry the envelope version, the request's W3C traceparent and the tenant. Upload
 * sessions name their repository instead of pointing at a repository row (opening a session
 * must not create a repository), and carry the writer lease that gives a session one writer at
 * a time across processes, judged by the database's clock alone, and record the digest a commit
 * verified before its bytes move, so recovering an interrupted commit accepts only that digest. Repository rows that only an
 * upload session ever created are removed. A repository remembers that a manifest was pushed to
 * it, so its tag listing answers (empty) after every manifest is deleted, as the reference
 * registry's does, while one that only ever held blobs answers NAME_UNKNOWN. A manifest's
 * annotations are kept once, in its payload: the jsonb copy cost a second parse of up to 4 MiB
 * inside the database on every PUT (see manifest-payload.ts).
 */
export class RequestScopeAndUploadLeases1764800000000 implements MigrationInterface {
  name = 'RequestScopeAndUploadLeases1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE event_outbox
        ADD COLUMN envelope_version integer NOT NULL DEFAULT 1,
        ADD COLUMN traceparent text,
        ADD COLUMN tenant text;
      ALTER TABLE upload_sessions ADD COLUMN repository text COLLATE "C";
      UPDATE upload_sessions s SET repository = r.name FROM repositories r WHERE r.id = s.repository_id;
      DELETE FROM upload_sessions WHERE repository IS NULL;
      ALTER TABLE upload_sessions ALTER COLUMN repository SET NOT NULL;
      ALTER TABLE upload_sessions DROP COLUMN repository_id;
      ALTER TABLE upload_sessions ADD COLUMN lease_owner uuid, ADD COLUMN lease_until timestamptz, ADD COLUMN committing_digest text;
      DELETE FROM repositories r
       WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
         AND NOT EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repository_id = r.id);
      ALTER TABLE manifests DROP COLUMN annotations;
      ALTER TABLE repositories ADD COLUMN manifest_pushed boolean NOT NULL DEFAULT false;
      UPDATE repositories r SET manifest_pushed = true WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE repositories DROP COLUMN manifest_pushed;
      ALTER TABLE manifests ADD COLUMN annotations jsonb;
      ALTER TABLE upload_sessions DROP COLUMN lease_owner, DROP COLUMN lease_until, DROP COLUMN committing_digest;
      ALTER TABLE upload_sessions ADD COLUMN repository_id bigint REFERENCES repositories(id) ON DELETE CASCADE;
      INSERT INTO repositories (name) SELECT DISTINCT repository FROM upload_sessions ON CONFLICT (name) DO NOTHING;
      UPDATE upload_sessions s SET repository_id = r.id FROM repositories r WHERE r.name = s.repository;
      ALTER TABLE upload_sessions ALTER COLUMN repository_id SET NOT NULL, DROP COLUMN repository;
      ALTER TABLE event_outbox DROP COLUMN envelope_version, DROP COLUMN traceparent, DROP COLUMN tenant;
    `);
  }
}
