import type { Queryer } from '../queryer';
import type { ManifestsChanged } from './manifest.store';

/** The three review queues (see migration 1765400000000). */
export type GcQueue = 'blobs' | 'links' | 'manifests';

/** A repository's link to a blob, as its review row names it. */
export interface LinkKey {
  repositoryId: number;
  digest: string;
}

/** A link GC may remove: no manifest of its repository references the blob. */
export interface GarbageLink extends LinkKey {
  repository: string;
  size: number;
}

/** A blob GC may remove: nothing links or references it, no upload is committing it. */
export interface GarbageBlob {
  digest: string;
  size: number;
}

/** A manifest GC may remove. */
export interface GarbageManifest {
  id: number;
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
}

/** What makes a manifest garbage beyond "no tag, no index": `gc.deleteuntagged`, `gc.deleteorphanreferrers`. */
export interface ManifestRules {
  deleteUntagged: boolean;
  deleteOrphanReferrers: boolean;
}

/** One queue's state, by the database's clock. */
export interface GcQueueState {
  queue: GcQueue;
  /** Rows in the queue. */
  depth: number;
  /** Rows due now. */
  due: number;
  /** How long the oldest due row has been due, in ms (0 when none is). */
  oldestDueMs: number;
  /** When the next row falls due (ISO 8601), when one waits. */
  nextDueAt: string | null;
}

/** The last pass of one worker over one queue that did anything. */
export interface GcRunRecord {
  worker: string;
  kind: GcQueue;
  finishedAt: string;
  reviewed: number;
  deleted: number;
  bytes: number;
}

/**
 * Test-only weakening of the worker's side, so the race harness can show that it finds the bug a
 * missing lock lets through. Never set outside tests.
 */
export interface GcUnsafeOptions {
  /** Judge targets without locking them first. */
  skipTargetLocks?: boolean;
  /** Ignore uploads that are committing a blob (pins and `committing_digest`). */
  ignoreCommitPins?: boolean;
}

/** Tests only: the rows that decide what is pullable, as {@link GcStore.referenceGraphForTests} reads them (ids as numbers). */
export interface ReferenceGraph {
  repositories: { id: number; name: string }[];
  tags: { repositoryId: number; manifestId: number }[];
  manifests: { id: number; repositoryId: number; digest: string }[];
  references: { manifestId: number; kind: 'blob' | 'manifest'; digest: string }[];
  links: { repositoryId: number; digest: string }[];
}

/** How far ahead of its due time an API transaction locks a review row (GitLab's "due soon"). */
const DUE_SOON = "interval '1 minute'";
/** A commit pin older than this is a crash's leftover, no longer a push in flight. */
const PIN_LIFETIME = "interval '1 hour'";

/**
 * The GC review queues and the statements of a review: claim due rows (`FOR UPDATE SKIP LOCKED`,
 * so any number of workers share the queues), lock their targets (`SKIP LOCKED`: a target a push
 * holds is postponed, never waited for), judge them again with the locks held, delete. Every
 * method that takes rows must run inside one transaction with the others of the same review.
 *
 * The API side ({@link lockDueReviews}) locks the review rows its change touches before the
 * change, when they are due soon: a worker then skips them, or the API waits for the worker's
 * transaction and sees its outcome.
 */
export class GcStore {
  constructor(
    private readonly q: Queryer,
    private readonly changed: ManifestsChanged,
    private readonly unsafe: GcUnsafeOptions = {},
  ) {}

  /** Sets the review delay the queue triggers use (`gc.reviewafter`). */
  async setReviewAfter(ms: number): Promise<void> {
    await this.q.query(`UPDATE gc_settings SET review_after = make_interval(secs => $1::double precision / 1000), updated_at = now() WHERE review_after <> make_interval(secs => $1::double precision / 1000)`, [ms]);
  }

  /**
   * Bounds how long this transaction waits for a row lock (`SET LOCAL lock_timeout`; 0 is no
   * bound). A worker holds the targets it locked while its deletes' cascades and triggers lock
   * review rows an API transaction may hold, and that transaction may wait for one of the
   * worker's targets: a cycle PostgreSQL finds only after `deadlock_timeout` (1 s), and then
   * possibly aborts the client's side. With the worker's waits bounded well below that, the
   * worker gives up first (its batch is postponed) and the client goes on.
   */
  async boundLockWaits(ms: number): Promise<void> {
    await this.q.query(`SET LOCAL lock_timeout = ${Math.max(0, Math.floor(ms))}`);
  }

  // ---- links ----

  /** Claims up to `limit` due link reviews. */
  async claimLinks(limit: number): Promise<LinkKey[]> {
    const { rows } = await this.q.query<{ repository_id: string; digest: string }>(
      `SELECT repository_id, digest FROM gc_link_review_queue WHERE review_after <= now()
        ORDER BY review_after LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), digest: r.digest }));
  }

  /** Locks the links of `keys` that no one else holds; returns those it locked. */
  async lockLinks(keys: readonly LinkKey[]): Promise<LinkKey[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.q.query<{ repository_id: string; digest: string }>(
      `SELECT rb.repository_id, rb.digest FROM repository_blobs rb
         JOIN unnest($1::bigint[], $2::text[]) AS k(repository_id, digest) ON rb.repository_id = k.repository_id AND rb.digest = k.digest
        ${this.unsafe.skipTargetLocks ? '' : 'FOR UPDATE OF rb SKIP LOCKED'}`,
      linkArrays(keys),
    );
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), digest: r.digest }));
  }

  /** Of the locked `keys`, the links that are garbage now: unreferenced in their repository and not pushed or mounted within the review delay. */
  async garbageLinks(keys: readonly LinkKey[]): Promise<GarbageLink[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.q.query<{ repository_id: string; digest: string; repository: string; size: string }>(
      `SELECT rb.repository_id, rb.digest, r.name AS repository, b.size FROM repository_blobs rb
         JOIN unnest($1::bigint[], $2::text[]) AS k(repository_id, digest) ON rb.repository_id = k.repository_id AND rb.digest = k.digest
         JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest
        WHERE rb.linked_at <= now() - (SELECT review_after FROM gc_settings)
          AND NOT EXISTS (SELECT 1 FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
                           WHERE mr.kind = 'blob' AND mr.digest = rb.digest AND m.repository_id = rb.repository_id)`,
      linkArrays(keys),
    );
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), digest: r.digest, repository: r.repository, size: Number(r.size) }));
  }

  /** Deletes links (their review rows go with them; each blob is queued for review by trigger). */
  async deleteLinks(keys: readonly LinkKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.q.query(
      `DELETE FROM repository_blobs rb USING unnest($1::bigint[], $2::text[]) AS k(repository_id, digest)
        WHERE rb.repository_id = k.repository_id AND rb.digest = k.digest`,
      linkArrays(keys),
    );
  }

  // ---- blobs ----

  /** Claims up to `limit` due blob reviews. */
  async claimBlobs(limit: number): Promise<string[]> {
    const { rows } = await this.q.query<{ digest: string }>(
      'SELECT digest FROM gc_blob_review_queue WHERE review_after <= now() ORDER BY review_after LIMIT $1 FOR UPDATE SKIP LOCKED',
      [limit],
    );
    return rows.map((r) => r.digest);
  }

  /** Locks the blob rows of `digests` that no one else holds (a commit pin or a link insert holds one); returns those it locked. */
  async lockBlobs(digests: readonly string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    const { rows } = await this.q.query<{ digest: string }>(
      `SELECT digest FROM blobs WHERE digest = ANY($1::text[]) ${this.unsafe.skipTargetLocks ? '' : 'FOR UPDATE SKIP LOCKED'}`,
      [digests],
    );
    return rows.map((r) => r.digest);
  }

  /** Of the locked `digests`, the blobs that are garbage now: no link, no manifest reference in any repository, no upload committing them. */
  async garbageBlobs(digests: readonly string[]): Promise<GarbageBlob[]> {
    if (digests.length === 0) return [];
    const pins = this.unsafe.ignoreCommitPins
      ? ''
      : `AND NOT EXISTS (SELECT 1 FROM upload_sessions s WHERE s.committing_digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_commit_pins p WHERE p.digest = b.digest AND p.created_at > now() - ${PIN_LIFETIME})`;
    const { rows } = await this.q.query<{ digest: string; size: string }>(
      `SELECT b.digest, b.size FROM blobs b
        WHERE b.digest = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.kind = 'blob' AND mr.digest = b.digest)
          ${pins}`,
      [digests],
    );
    return rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  /** Deletes blob rows (their review rows go with them). */
  async deleteBlobRows(digests: readonly string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.q.query('DELETE FROM blobs WHERE digest = ANY($1::text[])', [digests]);
  }

  // ---- manifests ----

  /** Claims up to `limit` due manifest reviews. */
  async claimManifests(limit: number): Promise<number[]> {
    const { rows } = await this.q.query<{ manifest_id: string }>(
      'SELECT manifest_id FROM gc_manifest_review_queue WHERE review_after <= now() ORDER BY review_after LIMIT $1 FOR UPDATE SKIP LOCKED',
      [limit],
    );
    return rows.map((r) => Number(r.manifest_id));
  }

  /** Locks the manifests of `ids` that no one else holds (a tag or index put holds one); returns those it locked. */
  async lockManifests(ids: readonly number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.q.query<{ id: string }>(
      `SELECT id FROM manifests WHERE id = ANY($1::bigint[]) ${this.unsafe.skipTargetLocks ? '' : 'FOR UPDATE SKIP LOCKED'}`,
      [ids],
    );
    return rows.map((r) => Number(r.id));
  }

  /**
   * Of the locked `ids`, the manifests that are garbage now: no tag, no index of their repository
   * references them, and either a referrer whose subject is gone (with `deleteOrphanReferrers`)
   * or, with no subject, untagged (with `deleteUntagged`). A referrer whose subject exists lives.
   */
  async garbageManifests(ids: readonly number[], rules: ManifestRules): Promise<GarbageManifest[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.q.query<{ id: string; repository: string; digest: string; media_type: string; size: number }>(
      `SELECT m.id, r.name AS repository, m.digest, m.media_type, m.size FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE m.id = ANY($1::bigint[])
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
          AND NOT EXISTS (SELECT 1 FROM manifest_references mr JOIN manifests p ON p.id = mr.manifest_id
                           WHERE mr.kind = 'manifest' AND mr.digest = m.digest AND p.repository_id = m.repository_id AND p.id <> m.id)
          AND CASE WHEN m.subject_digest IS NULL THEN $2::boolean
                   ELSE $3::boolean AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest)
              END`,
      [ids, rules.deleteUntagged, rules.deleteOrphanReferrers],
    );
    return rows.map((r) => ({ id: Number(r.id), repository: r.repository, digest: r.digest, mediaType: r.media_type, size: r.size }));
  }

  /** Deletes manifests (references, review rows go with them; what they kept alive is queued by trigger). */
  async deleteManifests(manifests: readonly GarbageManifest[]): Promise<void> {
    if (manifests.length === 0) return;
    for (const repo of new Set(manifests.map((m) => m.repository))) this.changed(repo);
    await this.q.query('DELETE FROM manifests WHERE id = ANY($1::bigint[])', [manifests.map((m) => m.id)]);
  }

  // ---- any queue ----

  /** Removes review rows whose item is not garbage: a later change that may make it garbage queues it again. */
  async dropReviews(queue: 'blobs', keys: readonly string[]): Promise<void>;
  async dropReviews(queue: 'links', keys: readonly LinkKey[]): Promise<void>;
  async dropReviews(queue: 'manifests', keys: readonly number[]): Promise<void>;
  async dropReviews(queue: GcQueue, keys: readonly (string | number | LinkKey)[]): Promise<void> {
    if (keys.length === 0) return;
    const { table, match, params } = keyMatch(queue, keys);
    await this.q.query(`DELETE FROM ${table} q USING ${match}`, params);
  }

  /**
   * Postpones review rows: due again in `baseMs` × 2^(times postponed before), at most `maxMs`.
   * Rows another worker holds are left to it.
   */
  async postpone(queue: GcQueue, keys: readonly (string | number | LinkKey)[], baseMs: number, maxMs: number): Promise<void> {
    if (keys.length === 0) return;
    const { table, match, params } = keyMatch(queue, keys);
    const n = params.length;
    await this.q.query(
      `UPDATE ${table} q SET review_count = q.review_count + 1,
              review_after = now() + make_interval(secs => LEAST($${n + 2}::double precision, $${n + 1}::double precision * power(2, LEAST(q.review_count, 40))) / 1000)
         FROM ${match}`,
      [...params, baseMs, maxMs],
    );
  }

  /** Rows of `queue` due now. */
  async dueCount(queue: GcQueue): Promise<number> {
    const { rows } = await this.q.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${QUEUE_TABLES[queue]} WHERE review_after <= now()`);
    return rows[0]?.n ?? 0;
  }

  /** Records a worker's pass over a queue (`lading gc status` shows the last). */
  async recordRun(run: Omit<GcRunRecord, 'finishedAt'>): Promise<void> {
    await this.q.query(
      `INSERT INTO gc_runs (worker, kind, finished_at, reviewed, deleted, bytes) VALUES ($1, $2, now(), $3, $4, $5)
       ON CONFLICT (worker, kind) DO UPDATE SET finished_at = now(), reviewed = EXCLUDED.reviewed, deleted = EXCLUDED.deleted, bytes = EXCLUDED.bytes`,
      [run.worker, run.kind, run.reviewed, run.deleted, run.bytes],
    );
  }

  /** The state of each queue and the last recorded runs, newest first. */
  async status(): Promise<{ queues: GcQueueState[]; runs: GcRunRecord[]; reviewAfterMs: number }> {
    const queues: GcQueueState[] = [];
    for (const [queue, table] of Object.entries(QUEUE_TABLES) as [GcQueue, string][]) {
      const { rows } = await this.q.query<{ depth: string; due: string; oldest: number | null; next: Date | null }>(
        `SELECT count(*) AS depth, count(*) FILTER (WHERE review_after <= now()) AS due,
                (extract(epoch FROM now() - min(review_after) FILTER (WHERE review_after <= now())) * 1000)::float8 AS oldest,
                min(review_after) FILTER (WHERE review_after > now()) AS next
           FROM ${table}`,
      );
      const r = rows[0]!;
      queues.push({
        queue,
        depth: Number(r.depth),
        due: Number(r.due),
        oldestDueMs: Math.round(r.oldest ?? 0),
        nextDueAt: r.next ? new Date(r.next).toISOString() : null,
      });
    }
    const { rows: runs } = await this.q.query<{ worker: string; kind: GcQueue; finished_at: Date; reviewed: string; deleted: string; bytes: string }>(
      'SELECT worker, kind, finished_at, reviewed, deleted, bytes FROM gc_runs ORDER BY finished_at DESC LIMIT 30',
    );
    const { rows: settings } = await this.q.query<{ ms: number }>('SELECT (extract(epoch FROM review_after) * 1000)::float8 AS ms FROM gc_settings');
    return {
      queues,
      runs: runs.map((r) => ({
        worker: r.worker,
        kind: r.kind,
        finishedAt: new Date(r.finished_at).toISOString(),
        reviewed: Number(r.reviewed),
        deleted: Number(r.deleted),
        bytes: Number(r.bytes),
      })),
      reviewAfterMs: Math.round(settings[0]?.ms ?? 0),
    };
  }

  // ---- invariants (the race harness, the leak tests) ----

  /**
   * Tests only (a blob DELETE that keeps referenced blobs): locks the link of `digest` in `name`
   * (waiting for a manifest put that holds it; GC's review rows first, as a put takes them) and
   * then counts the manifests of `name` that reference the blob; undefined when there is no link
   * (nothing was locked, so a link and a manifest over it could appear before a delete: the
   * caller must not delete then). Call inside a transaction.
   */
  async lockLinkAndCountReferences(name: string, digest: string): Promise<number | undefined> {
    const { rows: repo } = await this.q.query<{ id: string }>('SELECT id FROM repositories WHERE name = $1', [name]);
    if (!repo[0]) return undefined;
    await this.lockDueReviews(Number(repo[0].id), { blobDigests: [digest] });
    const { rows: link } = await this.q.query('SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2 FOR UPDATE', [repo[0].id, digest]);
    if (link.length === 0) return undefined;
    const { rows } = await this.q.query<{ n: string }>(
      `SELECT count(*) AS n FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
        WHERE m.repository_id = $1 AND mr.kind = 'blob' AND mr.digest = $2`,
      [repo[0].id, digest],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Tests only: the whole reference graph (repositories, tags, manifests, their references, blob
   * links), read in one statement so that the race harness checks one consistent state after
   * every step at the cost of a few trivially planned scans.
   */
  async referenceGraphForTests(): Promise<ReferenceGraph> {
    const { rows } = await this.q.query<{ g: ReferenceGraph }>(
      `SELECT json_build_object(
         'repositories', (SELECT coalesce(json_agg(json_build_object('id', id, 'name', name)), '[]') FROM repositories),
         'tags', (SELECT coalesce(json_agg(json_build_object('repositoryId', repository_id, 'manifestId', manifest_id)), '[]') FROM tags),
         'manifests', (SELECT coalesce(json_agg(json_build_object('id', id, 'repositoryId', repository_id, 'digest', digest)), '[]') FROM manifests),
         'references', (SELECT coalesce(json_agg(json_build_object('manifestId', manifest_id, 'kind', kind, 'digest', digest)), '[]') FROM manifest_references),
         'links', (SELECT coalesce(json_agg(json_build_object('repositoryId', repository_id, 'digest', digest)), '[]') FROM repository_blobs)) AS g`,
    );
    const g = rows[0]!.g;
    return typeof g === 'string' ? (JSON.parse(g) as ReferenceGraph) : g;
  }

  /** Every blob digest a link or a manifest references. */
  async referencedBlobDigests(): Promise<string[]> {
    const { rows } = await this.q.query<{ digest: string }>(
      "SELECT digest FROM repository_blobs UNION SELECT digest FROM manifest_references WHERE kind = 'blob'",
    );
    return rows.map((r) => r.digest);
  }

  /** Tests only: deletes every tag (the triggers queue the manifests they leave). */
  async untagAllForTests(): Promise<void> {
    await this.q.query('DELETE FROM tags');
  }

  /** Tests only: makes every review row due now (a postponed one included). */
  async makeAllDueForTests(): Promise<void> {
    for (const table of Object.values(QUEUE_TABLES)) await this.q.query(`UPDATE ${table} SET review_after = now() WHERE review_after > now()`);
  }

  /** Tests only: the blob rows and review rows there are, each as `blob <digest>` or `<queue table> <key>`. */
  async blobAndReviewRowsForTests(): Promise<string[]> {
    const { rows } = await this.q.query<{ row: string }>(
      `SELECT 'blob ' || digest AS row FROM blobs
       UNION ALL SELECT 'gc_blob_review_queue ' || digest FROM gc_blob_review_queue
       UNION ALL SELECT 'gc_link_review_queue ' || repository_id || ' ' || digest FROM gc_link_review_queue
       UNION ALL SELECT 'gc_manifest_review_queue ' || manifest_id FROM gc_manifest_review_queue`,
    );
    return rows.map((r) => r.row);
  }

  /** Tests only: empties every registry table (and the GC queues with them). */
  async truncateForTests(): Promise<void> {
    await this.q.query('TRUNCATE repositories, blobs, repository_blobs, manifests, manifest_references, tags, upload_sessions, blob_commit_pins, event_outbox, event_outbox_unsent, outbox_leases, gc_runs CASCADE');
  }

  // ---- the API side ----

  /**
   * Locks (`FOR UPDATE`, waiting) the review rows a change in repository `repositoryId` is about
   * to depend on, when they are due soon: the links of `blobDigests` (a manifest's config and
   * layers, or a blob being linked) and those blobs, and the manifests `manifestDigests` (an
   * index's children, a manifest being tagged) and the referrers of `subjectOf` (a manifest
   * whose referrers were waiting for it). Call first in the transaction, before touching the
   * rows themselves: a worker holding one of them finishes first (and the change then sees its
   * outcome), or skips it while the change runs. Rows are locked in key order (no deadlock
   * between two API transactions). One statement (`gc_lock_due_reviews`, migration
   * 1765460000000), whose queries each see what committed before them, as separate statements do.
   */
  async lockDueReviews(
    repositoryId: number,
    refs: { blobDigests?: readonly string[]; manifestDigests?: readonly string[]; subjectOf?: string },
  ): Promise<void> {
    const blobs = refs.blobDigests ?? [];
    const manifests = refs.manifestDigests ?? [];
    if (blobs.length === 0 && manifests.length === 0 && refs.subjectOf === undefined) return;
    // One round trip: the function runs the statement of each queue in turn (see its migration).
    await this.q.query(`SELECT gc_lock_due_reviews($1, $2::text[], $3::text[], $4::text, ${DUE_SOON})`, [repositoryId, blobs, manifests, refs.subjectOf ?? null]);
  }

  /** Pins `digest` while a single-request upload moves its bytes into place; call in a transaction of its own. */
  async pinCommit(id: string, digest: string): Promise<void> {
    // Waits for a worker deleting this blob right now (it holds the row), so the bytes this
    // upload is about to place are never the ones that worker removes.
    await this.q.query('SELECT 1 FROM blobs WHERE digest = $1 FOR KEY SHARE', [digest]);
    await this.q.query('INSERT INTO blob_commit_pins (id, digest) VALUES ($1, $2)', [id, digest]);
  }

  /** Removes a pin (in the transaction that links the blob, or after a failure). */
  async unpinCommit(id: string): Promise<void> {
    await this.q.query('DELETE FROM blob_commit_pins WHERE id = $1', [id]);
  }

  /** Removes pins older than their lifetime (a crashed upload's). */
  async prunePins(): Promise<number> {
    const { affected } = await this.q.query(`DELETE FROM blob_commit_pins WHERE created_at <= now() - ${PIN_LIFETIME}`);
    return affected;
  }
}

const QUEUE_TABLES: Record<GcQueue, string> = {
  blobs: 'gc_blob_review_queue',
  links: 'gc_link_review_queue',
  manifests: 'gc_manifest_review_queue',
};

function linkArrays(keys: readonly LinkKey[]): [number[], string[]] {
  return [keys.map((k) => k.repositoryId), keys.map((k) => k.digest)];
}

/** The table of `queue` and a `USING`/`FROM` clause matching its rows `q` to `keys`. */
function keyMatch(queue: GcQueue, keys: readonly (string | number | LinkKey)[]): { table: string; match: string; params: unknown[] } {
  const table = QUEUE_TABLES[queue];
  switch (queue) {
    case 'blobs':
      return { table, match: 'unnest($1::text[]) AS k(digest) WHERE q.digest = k.digest', params: [keys] };
    case 'manifests':
      return { table, match: 'unnest($1::bigint[]) AS k(id) WHERE q.manifest_id = k.id', params: [keys] };
    case 'links':
      return {
        table,
        match: 'unnest($1::bigint[], $2::text[]) AS k(repository_id, digest) WHERE q.repository_id = k.repository_id AND q.digest = k.digest',
        params: linkArrays(keys as LinkKey[]),
      };
  }
}
