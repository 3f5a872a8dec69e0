import { encodeRegistryEvent, type RegistryEvent, type RequestScope } from '@lading/contracts';
import { OUTBOX_ENVELOPE_VERSION, buildRegistryEvent, type EventSource, type RegistryEventInput } from '../event.factory';
import type { Queryer } from '../queryer';

/** An event ready for the outbox: the envelope and what the row keeps beside it. */
export interface OutboxEntry {
  event: RegistryEvent;
  traceparent: string | null;
  tenant: string | null;
}

/** An unsent outbox row, as the relay reads it. */
export interface OutboxEvent {
  id: string;
  /** Position in the outbox: a repository's events are relayed in increasing seq. */
  seq: number;
  repository: string;
  envelopeVersion: number;
  traceparent: string | null;
  /** The envelope as JSON, as it was written (the reference registry's field order): what goes on the bus. */
  payload: string;
  /** The envelope, parsed from `payload` on first use. */
  readonly event: RegistryEvent;
}

/** What is still to be relayed, by the database's clock. */
export interface OutboxBacklog {
  unsent: number;
  /** Age of the oldest unsent event in milliseconds; null when none is waiting. */
  oldestAgeMs: number | null;
}

/** How a relay claims work; see {@link OutboxStore.claimRepositories}. */
export interface ClaimOptions {
  /** The relay's id (one per process start). */
  owner: string;
  /** How long a claim lasts unless renewed, in milliseconds. */
  leaseMs: number;
  /** The most repositories one claim takes. */
  repositories: number;
  /** How many unsent rows of unclaimed repositories, oldest first, one claim looks through. */
  scan?: number;
  /**
   * How many of the oldest unsent rows, claimed or not, one claim looks through at most (default
   * 4 × `scan`): what bounds its cost while other relays, or this relay's other batches, hold the
   * repositories at the head of the outbox.
   */
  lookahead?: number;
}

/**
 * Advisory-lock namespace (the first key of the two-key form) of the per-repository order lock
 * that appends take; the second key is the repository's hash. Distinct from every one-key lock.
 */
const ORDER_LOCK_SPACE = 7_364_282;

/**
 * The transactional outbox: an event row written in the transaction of the change it describes,
 * and the relay's side of it (claims, sent marks, pruning).
 *
 * Ordering: appends take a per-repository lock held to the end of their transaction before a row
 * gets its `seq`, so one repository's rows commit in `seq` order; a reader never sees a
 * repository's later event without its earlier ones. Relays claim whole repositories (one lease
 * row each, see {@link claimRepositories}), so one relay at a time sends a repository's events,
 * oldest first.
 *
 * Unsent events: each has a narrow row in `event_outbox_unsent` (seq, repository, created_at),
 * written with it and deleted when it is marked sent; claims and reads walk that table, so the
 * wide rows are written once and deleted once (by the pruner), never updated.
 */
export class OutboxStore {
  constructor(
    private readonly q: Queryer,
    private readonly source: EventSource,
    /** Told of each append (the unit of work passes it on after commit). */
    private readonly appended: () => void = () => undefined,
  ) {}

  /**
   * Appends the event of a change; call it with the transaction of that change, as its last
   * statement (it takes the repository's order lock until commit), so the event exists exactly
   * when the change does. Stores the envelope version, the request's traceparent and tenant
   * beside the envelope.
   */
  async append(scope: RequestScope, input: RegistryEventInput): Promise<RegistryEvent> {
    const event = buildRegistryEvent(scope, input, this.source);
    await this.appendMany([{ event, traceparent: scope.traceparent, tenant: scope.tenant }]);
    return event;
  }

  /**
   * Appends built events in one multi-row INSERT, in the order given (within a transaction: it
   * takes the order locks of their repositories, in name order, until commit).
   */
  async appendMany(entries: readonly OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const repositories = [...new Set(entries.map((e) => e.event.target.repository))];
    await this.q.query(
      `SELECT pg_advisory_xact_lock(${ORDER_LOCK_SPACE}, hashtext(r)) FROM (SELECT r FROM unnest($1::text[]) AS r ORDER BY r) AS s`,
      [repositories],
    );
    await this.q.query(
      `WITH appended AS (
         INSERT INTO event_outbox (id, repository, action, payload, envelope_version, traceparent, tenant)
         SELECT e.id, e.repository, e.action, e.payload, ${OUTBOX_ENVELOPE_VERSION}, e.traceparent, e.tenant
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::json[], $5::text[], $6::text[])
                WITH ORDINALITY AS e(id, repository, action, payload, traceparent, tenant, n)
          ORDER BY e.n
         RETURNING seq, repository, created_at
       )
       INSERT INTO event_outbox_unsent (seq, repository, created_at) SELECT seq, repository, created_at FROM appended`,
      [
        entries.map((e) => e.event.id),
        entries.map((e) => e.event.target.repository),
        entries.map((e) => e.event.action),
        entries.map((e) => encodeRegistryEvent(e.event)),
        entries.map((e) => e.traceparent),
        entries.map((e) => e.tenant),
      ],
    );
    this.appended();
  }

  /**
   * Claims up to `repositories` repositories that have unsent events and that no live lease
   * holds, oldest waiting event first, for `owner` until `leaseMs` from now (database clock). One
   * statement: a repository whose lease another relay holds (or takes at the same moment) is not
   * returned; an expired lease is taken over. Leases are inserted in name order, so two relays
   * claiming overlapping sets cannot deadlock. It looks no further than the oldest `lookahead`
   * unsent rows: a repository with nothing waiting there is claimed once the head has moved on.
   * @returns the repositories claimed.
   */
  async claimRepositories(options: ClaimOptions): Promise<string[]> {
    const { rows } = await this.q.query<{ repository: string }>(
      `WITH head AS (
         SELECT u.repository, u.seq FROM event_outbox_unsent u ORDER BY u.seq LIMIT $5
       ), waiting AS (
         -- NOT IN over the live leases: one hashed set, whatever the planner guesses of that small, busy table.
         SELECT h.repository, h.seq FROM head h
          WHERE h.repository NOT IN (SELECT l.repository FROM outbox_leases l WHERE l.until > now())
          ORDER BY h.seq LIMIT $4
       ), candidates AS (
         SELECT repository FROM waiting GROUP BY repository ORDER BY min(seq) LIMIT $3
       )
       INSERT INTO outbox_leases AS l (repository, owner, until)
       SELECT repository, $1, now() + $2 * interval '1 millisecond' FROM candidates ORDER BY repository
       ON CONFLICT (repository) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until WHERE l.until <= now()
       RETURNING l.repository`,
      [options.owner, options.leaseMs, options.repositories, options.scan ?? 10_000, options.lookahead ?? 4 * (options.scan ?? 10_000)],
    );
    return rows.map((r) => r.repository);
  }

  /**
   * The oldest unsent events of `repositories` (claimed by the caller), in seq order, at most
   * `limit`: for each repository a gap-free prefix of what it has waiting. One walk of the narrow
   * unsent rows in seq order: a plan that stays right when the statistics say the outbox is empty,
   * as they usually do (a per-repository LATERAL read walks an index once per repository then:
   * 250 ms instead of 2 ms for 64 of 1000 repositories); the wide rows are then fetched by seq.
   * The payload comes back as the text written (`::text`: the driver would parse `json`).
   */
  async unsentOf(repositories: readonly string[], limit: number): Promise<OutboxEvent[]> {
    if (repositories.length === 0) return [];
    const { rows } = await this.q.query<{
      id: string;
      seq: number | string;
      repository: string;
      envelope_version: number;
      traceparent: string | null;
      payload: string;
    }>(
      `SELECT o.id, o.seq, o.repository, o.envelope_version, o.traceparent, o.payload::text AS payload
         FROM (SELECT seq FROM event_outbox_unsent WHERE repository = ANY($1::text[]) ORDER BY seq LIMIT $2) AS u
         JOIN event_outbox o ON o.seq = u.seq
        ORDER BY u.seq`,
      [repositories, limit],
    );
    return rows.map((r) => outboxEvent(r.id, Number(r.seq), r.repository, r.envelope_version, r.traceparent, r.payload));
  }

  /** Extends `owner`'s leases by `leaseMs` from now; returns the repositories it still holds. */
  async renewLeases(owner: string, leaseMs: number): Promise<string[]> {
    const { rows } = await this.q.query<{ repository: string }>(
      `UPDATE outbox_leases SET until = now() + $2 * interval '1 millisecond'
        WHERE repository IN (SELECT repository FROM outbox_leases WHERE owner = $1 ORDER BY repository FOR UPDATE)
        RETURNING repository`,
      [owner, leaseMs],
    );
    return rows.map((r) => r.repository);
  }

  /**
   * Marks the events at `seqs` sent (those not already: it deletes their unsent rows) and gives up
   * `owner`'s leases on `repositories`, in one statement: another relay sees both or neither, and
   * it costs one round trip (no transaction of its own needed). Rows are deleted through the key
   * by `= ANY` (the index visits them in seq order) and leases locked in name order, so relays
   * marking overlapping sets (after a lease was taken over) cannot deadlock. No `IN (SELECT … FOR
   * UPDATE)` here: with the statistics of a near-empty queue the planner reran that subquery once
   * per queued row (2,000 marks among 20,000 rows: 280 s).
   * @returns how many rows were newly marked.
   */
  async markSent(owner: string, seqs: readonly number[], repositories: readonly string[]): Promise<number> {
    const { rows } = await this.q.query<{ marked: number }>(
      `WITH marked AS (
         DELETE FROM event_outbox_unsent WHERE seq = ANY($2::bigint[]) RETURNING 1
       ), released AS (
         DELETE FROM outbox_leases WHERE repository IN (
           SELECT repository FROM outbox_leases WHERE owner = $1 AND repository = ANY($3::text[]) ORDER BY repository FOR UPDATE)
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM marked)::int AS marked, (SELECT count(*) FROM released)::int AS released`,
      [owner, seqs, repositories],
    );
    return Number(rows[0].marked);
  }

  /** Gives up `owner`'s leases on `repositories` (all of its leases when omitted). */
  async releaseLeases(owner: string, repositories?: readonly string[]): Promise<void> {
    await this.q.query(
      `DELETE FROM outbox_leases WHERE repository IN (
         SELECT repository FROM outbox_leases WHERE owner = $1 AND ($2::text[] IS NULL OR repository = ANY($2::text[]))
          ORDER BY repository FOR UPDATE)`,
      [owner, repositories ?? null],
    );
  }

  /** How many events wait to be relayed, and for how long the oldest has (database clock). */
  async backlog(): Promise<OutboxBacklog> {
    const { rows } = await this.q.query<{ unsent: number | string; oldest_ms: number | string | null }>(
      `SELECT count(*) AS unsent, (extract(epoch FROM now() - min(created_at)) * 1000)::bigint AS oldest_ms
         FROM event_outbox_unsent`,
    );
    const r = rows[0];
    return { unsent: Number(r.unsent), oldestAgeMs: r.oldest_ms === null ? null : Number(r.oldest_ms) };
  }

  /**
   * Deletes at most `limit` sent events written more than `retentionMs` ago (an unsent one is
   * never deleted; rows another pruner holds are skipped); returns how many. The rows to go are
   * picked once (a CTE with a lock is evaluated once), then deleted by key.
   */
  async pruneSent(retentionMs: number, limit: number): Promise<number> {
    const { affected } = await this.q.query(
      `WITH doomed AS (
         SELECT o.seq FROM event_outbox o
          WHERE o.created_at < now() - $1 * interval '1 millisecond'
            AND NOT EXISTS (SELECT 1 FROM event_outbox_unsent u WHERE u.seq = o.seq)
          LIMIT $2 FOR UPDATE OF o SKIP LOCKED
       )
       DELETE FROM event_outbox o USING doomed d WHERE o.seq = d.seq`,
      [retentionMs, limit],
    );
    return affected;
  }
}

/** An outbox event whose envelope is parsed from `payload` only if something reads `event` (the Kafka bus sends the text). */
function outboxEvent(id: string, seq: number, repository: string, envelopeVersion: number, traceparent: string | null, payload: string): OutboxEvent {
  let event: RegistryEvent | undefined;
  return {
    id,
    seq,
    repository,
    envelopeVersion,
    traceparent,
    payload,
    get event() {
      return (event ??= JSON.parse(payload) as RegistryEvent);
    },
  };
}
