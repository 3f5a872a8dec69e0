import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Online garbage collection, after GitLab's design: review queues filled by triggers in the
 * transaction of every change that may leave garbage, worked by any number of GC workers.
 *
 * Why triggers and not the store layer: most garbage appears through cascades the stores never
 * see (a manifest delete cascades to its tags and references; a repository delete to its links),
 * and a trigger cannot be forgotten by the next write path. Each trigger is one upsert of a queue
 * row; nothing runs on reads.
 *
 * - `gc_link_review_queue`: a repository's link to a blob, queued when it is pushed or mounted
 *   (`linked_at` moves) and when a manifest of its repository that referenced the blob is deleted.
 * - `gc_blob_review_queue`: a blob, queued when a link to it is removed.
 * - `gc_manifest_review_queue`: a manifest, queued when it is pushed, when a tag leaves it (delete
 *   or switch), when an index that referenced it is deleted, and when its subject is deleted.
 * Every row is due `gc_settings.review_after` after its event (a later event postpones it: the
 * due time only grows); a row whose item is deleted goes with it (foreign keys, cascading).
 *
 * `blob_commit_pins`: a single-request blob upload pins its digest while it moves the bytes into
 * place, as a chunked upload's `committing_digest` does, so a GC worker never deletes bytes that a
 * push is about to link.
 */
export class GcReviewQueues1765400000000 implements MigrationInterface {
  name = 'GcReviewQueues1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE repository_blobs ADD COLUMN linked_at timestamptz NOT NULL DEFAULT now();
      UPDATE repository_blobs SET linked_at = created_at;

      CREATE TABLE gc_settings (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        review_after interval NOT NULL DEFAULT interval '24 hours' CHECK (review_after >= interval '0'),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO gc_settings DEFAULT VALUES;

      CREATE TABLE gc_blob_review_queue (
        digest text PRIMARY KEY REFERENCES blobs(digest) ON DELETE CASCADE,
        review_after timestamptz NOT NULL,
        review_count integer NOT NULL DEFAULT 0,
        event text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX gc_blob_review_queue_due_idx ON gc_blob_review_queue (review_after);

      CREATE TABLE gc_link_review_queue (
        repository_id bigint NOT NULL,
        digest text NOT NULL,
        review_after timestamptz NOT NULL,
        review_count integer NOT NULL DEFAULT 0,
        event text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (repository_id, digest),
        FOREIGN KEY (repository_id, digest) REFERENCES repository_blobs (repository_id, digest) ON DELETE CASCADE
      );
      CREATE INDEX gc_link_review_queue_due_idx ON gc_link_review_queue (review_after);

      CREATE TABLE gc_manifest_review_queue (
        manifest_id bigint PRIMARY KEY REFERENCES manifests(id) ON DELETE CASCADE,
        repository_id bigint NOT NULL,
        review_after timestamptz NOT NULL,
        review_count integer NOT NULL DEFAULT 0,
        event text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX gc_manifest_review_queue_due_idx ON gc_manifest_review_queue (review_after);

      CREATE TABLE blob_commit_pins (
        id uuid PRIMARY KEY,
        digest text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX blob_commit_pins_digest_idx ON blob_commit_pins (digest);
      CREATE INDEX upload_sessions_committing_idx ON upload_sessions (committing_digest) WHERE committing_digest IS NOT NULL;
      CREATE INDEX manifest_references_kind_digest_idx ON manifest_references (kind, digest);

      CREATE TABLE gc_runs (
        worker text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('blobs', 'links', 'manifests')),
        finished_at timestamptz NOT NULL,
        reviewed bigint NOT NULL,
        deleted bigint NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (worker, kind)
      );

      CREATE FUNCTION gc_review_due() RETURNS timestamptz LANGUAGE sql STABLE AS
        $$ SELECT now() + review_after FROM gc_settings $$;

      CREATE FUNCTION gc_queue_link() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO gc_link_review_queue (repository_id, digest, review_after, event)
        VALUES (NEW.repository_id, NEW.digest, gc_review_due(), TG_ARGV[0])
        ON CONFLICT (repository_id, digest) DO UPDATE
          SET review_after = GREATEST(gc_link_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        RETURN NULL;
      END $$;
      CREATE TRIGGER gc_link_pushed AFTER INSERT ON repository_blobs
        FOR EACH ROW EXECUTE FUNCTION gc_queue_link('blob_push');
      CREATE TRIGGER gc_link_repushed AFTER UPDATE OF linked_at ON repository_blobs
        FOR EACH ROW EXECUTE FUNCTION gc_queue_link('blob_push');

      CREATE FUNCTION gc_queue_unlinked_blob() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO gc_blob_review_queue (digest, review_after, event)
        SELECT b.digest, gc_review_due(), 'link_delete' FROM blobs b WHERE b.digest = OLD.digest
        ON CONFLICT (digest) DO UPDATE
          SET review_after = GREATEST(gc_blob_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        RETURN NULL;
      END $$;
      CREATE TRIGGER gc_link_deleted AFTER DELETE ON repository_blobs
        FOR EACH ROW EXECUTE FUNCTION gc_queue_unlinked_blob();

      CREATE FUNCTION gc_queue_pushed_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO gc_manifest_review_queue (manifest_id, repository_id, review_after, event)
        VALUES (NEW.id, NEW.repository_id, gc_review_due(), 'manifest_push')
        ON CONFLICT (manifest_id) DO UPDATE
          SET review_after = GREATEST(gc_manifest_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        RETURN NULL;
      END $$;
      -- A tag left OLD.manifest_id; nothing to queue when the manifest itself is going (a cascade).
      CREATE FUNCTION gc_queue_untagged_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO gc_manifest_review_queue (manifest_id, repository_id, review_after, event)
        SELECT m.id, m.repository_id, gc_review_due(), TG_ARGV[0] FROM manifests m WHERE m.id = OLD.manifest_id
        ON CONFLICT (manifest_id) DO UPDATE
          SET review_after = GREATEST(gc_manifest_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        RETURN NULL;
      END $$;
      CREATE TRIGGER gc_manifest_pushed AFTER INSERT ON manifests
        FOR EACH ROW EXECUTE FUNCTION gc_queue_pushed_manifest();
      CREATE TRIGGER gc_tag_deleted AFTER DELETE ON tags
        FOR EACH ROW EXECUTE FUNCTION gc_queue_untagged_manifest('tag_delete');
      CREATE TRIGGER gc_tag_switched AFTER UPDATE OF manifest_id ON tags
        FOR EACH ROW WHEN (OLD.manifest_id IS DISTINCT FROM NEW.manifest_id) EXECUTE FUNCTION gc_queue_untagged_manifest('tag_switch');

      -- Before the delete, while its references are still there: what the manifest kept alive.
      CREATE FUNCTION gc_manifest_deleting() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO gc_link_review_queue (repository_id, digest, review_after, event)
        SELECT rb.repository_id, rb.digest, gc_review_due(), 'manifest_delete'
          FROM manifest_references mr
          JOIN repository_blobs rb ON rb.repository_id = OLD.repository_id AND rb.digest = mr.digest
         WHERE mr.manifest_id = OLD.id AND mr.kind = 'blob'
        ON CONFLICT (repository_id, digest) DO UPDATE
          SET review_after = GREATEST(gc_link_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        -- A referenced blob whose link was removed (a blob DELETE) was kept alive by this reference alone.
        INSERT INTO gc_blob_review_queue (digest, review_after, event)
        SELECT b.digest, gc_review_due(), 'manifest_delete'
          FROM manifest_references mr JOIN blobs b ON b.digest = mr.digest
         WHERE mr.manifest_id = OLD.id AND mr.kind = 'blob'
           AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = OLD.repository_id AND rb.digest = mr.digest)
        ON CONFLICT (digest) DO UPDATE
          SET review_after = GREATEST(gc_blob_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        INSERT INTO gc_manifest_review_queue (manifest_id, repository_id, review_after, event)
        SELECT m.id, m.repository_id, gc_review_due(), 'parent_delete'
          FROM manifest_references mr
          JOIN manifests m ON m.repository_id = OLD.repository_id AND m.digest = mr.digest
         WHERE mr.manifest_id = OLD.id AND mr.kind = 'manifest' AND m.id <> OLD.id
        UNION
        SELECT m.id, m.repository_id, gc_review_due(), 'subject_delete'
          FROM manifests m WHERE m.repository_id = OLD.repository_id AND m.subject_digest = OLD.digest AND m.id <> OLD.id
        ON CONFLICT (manifest_id) DO UPDATE
          SET review_after = GREATEST(gc_manifest_review_queue.review_after, EXCLUDED.review_after), event = EXCLUDED.event;
        RETURN OLD;
      END $$;
      CREATE TRIGGER gc_manifest_deleting BEFORE DELETE ON manifests
        FOR EACH ROW EXECUTE FUNCTION gc_manifest_deleting();

      -- Links, manifests and tags that exist now are reviewed once, as if just pushed.
      INSERT INTO gc_link_review_queue (repository_id, digest, review_after, event)
        SELECT repository_id, digest, gc_review_due(), 'migration' FROM repository_blobs;
      INSERT INTO gc_manifest_review_queue (manifest_id, repository_id, review_after, event)
        SELECT id, repository_id, gc_review_due(), 'migration' FROM manifests;
      INSERT INTO gc_blob_review_queue (digest, review_after, event)
        SELECT digest, gc_review_due(), 'migration' FROM blobs b
         WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TRIGGER gc_manifest_deleting ON manifests; DROP FUNCTION gc_manifest_deleting();
      DROP TRIGGER gc_manifest_pushed ON manifests; DROP TRIGGER gc_tag_deleted ON tags; DROP TRIGGER gc_tag_switched ON tags;
      DROP FUNCTION gc_queue_pushed_manifest(); DROP FUNCTION gc_queue_untagged_manifest();
      DROP TRIGGER gc_link_deleted ON repository_blobs; DROP FUNCTION gc_queue_unlinked_blob();
      DROP TRIGGER gc_link_pushed ON repository_blobs; DROP TRIGGER gc_link_repushed ON repository_blobs; DROP FUNCTION gc_queue_link();
      DROP FUNCTION gc_review_due();
      DROP TABLE gc_runs; DROP INDEX manifest_references_kind_digest_idx; DROP INDEX upload_sessions_committing_idx;
      DROP TABLE blob_commit_pins; DROP TABLE gc_manifest_review_queue; DROP TABLE gc_link_review_queue; DROP TABLE gc_blob_review_queue;
      DROP TABLE gc_settings;
      ALTER TABLE repository_blobs DROP COLUMN linked_at;
    `);
  }
}
