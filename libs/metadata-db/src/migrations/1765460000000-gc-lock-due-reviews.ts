import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `gc_lock_due_reviews`: the API side's GC locks (`GcStore.lockDueReviews`) in one call instead of
 * one statement per review queue (three per manifest put, two per blob link or mount).
 *
 * A function and not one statement with a locking CTE per queue, because under READ COMMITTED one
 * statement reads every queue as of its start: a review row that a worker queued while the
 * statement waited on an earlier lock (a link batch that removed a link queues its blob) would not
 * be seen, so not locked. A VOLATILE function's statements each take a fresh snapshot, as the
 * separate statements did: the same rows are locked, in the same order (links, then blobs, each by
 * digest; then manifests by id), in the same "due soon" window (passed in by the store).
 */
export class GcLockDueReviews1765460000000 implements MigrationInterface {
  name = 'GcLockDueReviews1765460000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION gc_lock_due_reviews(p_repository_id bigint, p_blobs text[], p_manifests text[], p_subject text, p_due_soon interval)
        RETURNS void LANGUAGE plpgsql VOLATILE AS $$
      BEGIN
        IF cardinality(p_blobs) > 0 THEN
          PERFORM 1 FROM gc_link_review_queue
            WHERE repository_id = p_repository_id AND digest = ANY(p_blobs) AND review_after < now() + p_due_soon
            ORDER BY digest FOR UPDATE;
          PERFORM 1 FROM gc_blob_review_queue
            WHERE digest = ANY(p_blobs) AND review_after < now() + p_due_soon
            ORDER BY digest FOR UPDATE;
        END IF;
        IF cardinality(p_manifests) > 0 OR p_subject IS NOT NULL THEN
          PERFORM 1 FROM gc_manifest_review_queue q JOIN manifests m ON m.id = q.manifest_id
            WHERE m.repository_id = p_repository_id AND (m.digest = ANY(p_manifests) OR m.subject_digest = p_subject)
              AND q.review_after < now() + p_due_soon
            ORDER BY q.manifest_id FOR UPDATE OF q;
        END IF;
      END $$;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP FUNCTION gc_lock_due_reviews(bigint, text[], text[], text, interval)');
  }
}
