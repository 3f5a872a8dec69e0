import type { UploadPartRecord } from '../entities/registry.entity';
import { asBuffer, type Queryer } from '../queryer';

/**
 * A saved hash state of a session's first `offset` bytes. Opaque here: `impl` names the hashing
 * build that wrote `state`, and only that build may load it (anything else re-hashes).
 */
export interface HashCheckpoint {
  impl: string;
  offset: number;
  state: Buffer;
}

/** An upload session as the database knows it: its committed size is the source of truth. */
export interface UploadSession {
  id: string;
  repository: string;
  size: number;
  /** The stored parts that hold those bytes, in order (the storage driver's list, recorded with the size). */
  parts: UploadPartRecord[];
  /** Whether a writer holds the session's lease now (by the database's clock). */
  leased: boolean;
  /** The digest a commit verified and began to install, if one did (see {@link UploadStore.recordCommit}). */
  committingDigest: string | null;
  /** The latest saved hash state of the session's bytes, if a writer recorded one. */
  hashCheckpoint: HashCheckpoint | null;
  /** The W3C traceparent of the request that opened the session, when it had one. */
  traceparent: string | null;
}

interface SessionRow extends Omit<UploadSession, 'hashCheckpoint'> {
  hashImpl: string | null;
  hashOffset: string | number | null;
  hashState: Uint8Array | null;
}

/**
 * The upload_sessions rows. A session has one writer at a time across every process: an append
 * takes the session's lease (owner token + expiry, both judged by the database's clock alone, so
 * no process clock or file time is compared with another), renews it while bytes stream, and
 * gives it up when it advances the committed size. A lease left by a process that died expires.
 */
export class UploadStore {
  constructor(private readonly q: Queryer) {}

  /** Creates the session row. Opening a session does not create the repository. */
  async createSession(id: string, repository: string, traceparent: string | null = null): Promise<void> {
    await this.q.query('INSERT INTO upload_sessions (id, repository, traceparent) VALUES ($1, $2, $3)', [id, repository, traceparent]);
  }

  /** The session `id` of repository `name`, or undefined. */
  async findSession(name: string, id: string): Promise<UploadSession | undefined> {
    const { rows } = await this.q.query<SessionRow>(
      `SELECT id, repository, size, parts, coalesce(lease_until > now(), false) AS leased, committing_digest AS "committingDigest",
              hash_impl AS "hashImpl", hash_offset AS "hashOffset", hash_state AS "hashState", traceparent
         FROM upload_sessions WHERE id = $1 AND repository = $2`,
      [id, name],
    );
    const row = rows[0];
    if (!row) return undefined;
    const { hashImpl, hashOffset, hashState, ...session } = row;
    const hashCheckpoint =
      hashImpl !== null && hashOffset !== null && hashState !== null
        ? { impl: hashImpl, offset: Number(hashOffset), state: asBuffer(hashState) }
        : null;
    return { ...session, size: Number(session.size), hashCheckpoint };
  }

  /**
   * Takes the writer lease of session `id` for `leaseMs`, if its committed size is still `size`
   * and no other writer holds a live lease. A leased session is never stale, so the lease does
   * not touch `updated_at`: only a committed change does. False when another writer holds it or
   * the size moved.
   */
  async acquireLease(id: string, size: number, owner: string, leaseMs: number): Promise<boolean> {
    const { affected } = await this.q.query(
      `UPDATE upload_sessions SET lease_owner = $3, lease_until = now() + make_interval(secs => $4::double precision / 1000)
        WHERE id = $1 AND size = $2 AND (lease_until IS NULL OR lease_until <= now() OR lease_owner = $3)`,
      [id, size, owner, leaseMs],
    );
    return affected === 1;
  }

  /** Extends a lease `owner` holds; false when it lost it (expired and taken over, or the session is gone). */
  async renewLease(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const { affected } = await this.q.query(
      `UPDATE upload_sessions SET lease_until = now() + make_interval(secs => $3::double precision / 1000)
        WHERE id = $1 AND lease_owner = $2`,
      [id, owner, leaseMs],
    );
    return affected === 1;
  }

  /** Gives up `owner`'s lease (its work is done, or failed and rolled back). */
  async releaseLease(id: string, owner: string): Promise<void> {
    await this.q.query('UPDATE upload_sessions SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [
      id,
      owner,
    ]);
  }

  /**
   * Moves the committed size from `from` to `to` and records `parts` as the bytes' parts, in one
   * statement, as writer `owner` (who keeps the lease); false when it no longer holds it. With
   * `checkpoint` (the hash state of the first `checkpoint.offset` of those `to` bytes) it is
   * recorded too; without, the session keeps the checkpoint it had, still true for its own offset.
   */
  async advanceSize(
    id: string,
    owner: string,
    from: number,
    to: number,
    parts: readonly UploadPartRecord[],
    checkpoint?: HashCheckpoint,
  ): Promise<boolean> {
    if (checkpoint && checkpoint.offset > to) throw new Error(`a hash checkpoint at ${checkpoint.offset} recorded with size ${to}`);
    const { affected } = await this.q.query(
      checkpoint
        ? `UPDATE upload_sessions SET size = $4, parts = $5::jsonb, updated_at = now(), hash_impl = $6, hash_offset = $8, hash_state = $7
            WHERE id = $1 AND lease_owner = $2 AND size = $3`
        : `UPDATE upload_sessions SET size = $4, parts = $5::jsonb, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND size = $3`,
      checkpoint
        ? [id, owner, from, to, JSON.stringify(parts), checkpoint.impl, checkpoint.state, checkpoint.offset]
        : [id, owner, from, to, JSON.stringify(parts)],
    );
    return affected === 1;
  }

  /**
   * Records, as writer `owner`, that the session's bytes verified as `digest` and are about to be
   * installed under it. A commit that dies after moving the bytes is then finished only for that
   * digest: recovery never links some other stored blob of the same size. False when `owner` lost the lease.
   */
  async recordCommit(id: string, owner: string, digest: string): Promise<boolean> {
    // The digest also pins the blob against GC (GcStore.garbageBlobs), and the blob row is
    // share-locked first: a worker deleting that blob right now finishes before this returns, so
    // the bytes about to be installed are never the ones it removes.
    const { affected } = await this.q.query(
      `WITH pinned AS (SELECT 1 FROM blobs WHERE digest = $3 FOR KEY SHARE)
       UPDATE upload_sessions SET committing_digest = $3 WHERE id = $1 AND lease_owner = $2 AND (SELECT count(*) FROM pinned) >= 0`,
      [id, owner, digest],
    );
    return affected === 1;
  }

  /** Deletes the session row; false when it was not there. */
  async deleteSession(id: string): Promise<boolean> {
    const { affected } = await this.q.query('DELETE FROM upload_sessions WHERE id = $1', [id]);
    return affected === 1;
  }

  /** Sessions untouched for longer than `ageMs` and not being written to, oldest first, for purging. */
  async findStale(ageMs: number, limit: number): Promise<string[]> {
    const { rows } = await this.q.query<{ id: string }>(
      `SELECT id FROM upload_sessions
        WHERE updated_at < now() - make_interval(secs => $1::double precision / 1000)
          AND (lease_until IS NULL OR lease_until <= now())
        ORDER BY updated_at LIMIT $2`,
      [ageMs, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Deletes session `id` only if it is still stale and unleased (an upload resumed meanwhile survives). */
  async deleteIfStale(id: string, ageMs: number): Promise<boolean> {
    const { affected } = await this.q.query(
      `DELETE FROM upload_sessions WHERE id = $1
          AND updated_at < now() - make_interval(secs => $2::double precision / 1000)
          AND (lease_until IS NULL OR lease_until <= now())`,
      [id, ageMs],
    );
    return affected === 1;
  }

  /** Open sessions (all processes'), and how many of them are being written to now (leased). */
  async countOpen(): Promise<{ open: number; writing: number }> {
    const { rows } = await this.q.query<{ open: number; writing: number }>(
      `SELECT count(*)::int AS open, (count(*) FILTER (WHERE lease_until > now()))::int AS writing FROM upload_sessions`,
    );
    return rows[0]!;
  }

  /** Whether a session row exists (purging tells orphaned upload bytes apart with it). */
  async exists(id: string): Promise<boolean> {
    const { rows } = await this.q.query('SELECT 1 FROM upload_sessions WHERE id = $1', [id]);
    return rows.length > 0;
  }
}
