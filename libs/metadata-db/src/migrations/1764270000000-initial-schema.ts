import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The first schema: repositories, blobs and links, manifests and references, tags, uploads, outbox. */
export class InitialSchema1764270000000 implements MigrationInterface {
  name = 'InitialSchema1764270000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE repositories (
        id bigserial PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE blobs (
        digest text PRIMARY KEY,
        size bigint NOT NULL CHECK (size >= 0),
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE repository_blobs (
        repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        digest text NOT NULL REFERENCES blobs(digest),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (repository_id, digest)
      );
      CREATE INDEX repository_blobs_digest_idx ON repository_blobs (digest);
      CREATE TABLE manifests (
        id bigserial PRIMARY KEY,
        repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        digest text NOT NULL,
        media_type text NOT NULL,
        payload bytea NOT NULL,
        size integer NOT NULL,
        config_digest text,
        subject_digest text,
        artifact_type text,
        annotations jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (repository_id, digest)
      );
      CREATE INDEX manifests_subject_idx ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;
      CREATE TABLE manifest_references (
        manifest_id bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('blob', 'manifest')),
        digest text NOT NULL,
        PRIMARY KEY (manifest_id, kind, digest)
      );
      CREATE INDEX manifest_references_digest_idx ON manifest_references (digest);
      CREATE TABLE tags (
        repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        name text COLLATE "C" NOT NULL,
        manifest_id bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (repository_id, name)
      );
      CREATE INDEX tags_manifest_idx ON tags (manifest_id);
      CREATE TABLE upload_sessions (
        id uuid PRIMARY KEY,
        repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        size bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX upload_sessions_updated_idx ON upload_sessions (updated_at);
      CREATE TABLE event_outbox (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        repository text NOT NULL,
        action text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
      );
      CREATE INDEX event_outbox_unsent_idx ON event_outbox (seq) WHERE sent_at IS NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE event_outbox; DROP TABLE upload_sessions; DROP TABLE tags; DROP TABLE manifest_references;
      DROP TABLE manifests; DROP TABLE repository_blobs; DROP TABLE blobs; DROP TABLE repositories;
    `);
  }
}
