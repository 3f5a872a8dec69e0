import type { Queryer } from '../queryer';

/** An event to deliver to one endpoint. */
export interface WebhookEventInput {
  id: string;
  repository: string;
  action: string;
  /** The event envelope as it goes in the body. */
  payload: unknown;
  /** The W3C traceparent of the event's trace, for the POST to continue. */
  traceparent?: string | null;
}

/** A delivery row claimed for sending. */
export interface ClaimedDelivery {
  eventId: string;
  traceparent: string | null;
  payload: unknown;
  attempts: number;
}

/** One delivery as the admin API lists it. */
export interface WebhookDelivery {
  endpoint: string;
  eventId: string;
  repository: string;
  action: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  dueAt: Date;
  lastStatus: number | null;
  lastError: string | null;
  lastLatencyMs: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One POST of the delivery log. */
export interface WebhookAttempt {
  id: number;
  endpoint: string;
  eventIds: string[];
  attemptedAt: Date;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  responseSnippet: string;
}

/** An endpoint's state and lag. */
export interface WebhookEndpointState {
  name: string;
  paused: boolean;
  /** Consecutive failed POSTs. */
  failures: number;
  backoffUntil: Date | null;
  pending: number;
  dead: number;
  delivered: number;
  /** Seconds the oldest pending event has waited, by the database's clock; null when none waits. */
  oldestPendingSeconds: number | null;
}

/** What became of a claimed batch after its POST. */
export type DeliveryOutcome =
  | { delivered: true }
  | { delivered: false; retryAfterMs: number; maxAttempts: number; threshold: number; endpointBackoffMs: number };

/** The result of one POST, for the log. */
export interface AttemptRecord {
  status: number | null;
  latencyMs: number;
  error: string | null;
  snippet: string;
}

/**
 * Webhook deliveries: each endpoint's own cursor over the events (one row per endpoint and
 * event), claims that let any number of notifications replicas deliver without sending a row
 * twice at once (owner + expiry by the database's clock; a claim a dead replica left lapses),
 * retries with a due time, dead letters, the delivery log, and what operators set (pause,
 * redeliver).
 */
export class WebhookStore {
  constructor(private readonly q: Queryer) {}

  /** Queues `events` for `endpoint`; an event already queued for it is left as it is (at-least-once intake). */
  async enqueue(endpoint: string, events: readonly WebhookEventInput[]): Promise<void> {
    if (events.length === 0) return;
    await this.q.query(
      `INSERT INTO webhook_deliveries (endpoint, event_id, repository, action, payload, traceparent)
       SELECT $1, e.id, e.repository, e.action, e.payload, e.traceparent
         FROM jsonb_to_recordset($2::jsonb) AS e(id uuid, repository text, action text, payload jsonb, traceparent text)
       ON CONFLICT (endpoint, event_id) DO NOTHING`,
      [endpoint, JSON.stringify(events)],
    );
  }

  /**
   * Claims up to `limit` due pending deliveries of `endpoint` for `owner` until `claimMs` from
   * now, oldest first, skipping rows another replica holds; none while the endpoint is paused or
   * backing off. The claim is the only lock: nothing is held while the POST runs.
   */
  async claimDue(endpoint: string, owner: string, limit: number, claimMs: number): Promise<ClaimedDelivery[]> {
    const { rows } = await this.q.query<ClaimedDelivery>(
      `WITH due AS (
         SELECT d.endpoint, d.event_id FROM webhook_deliveries d
          WHERE d.endpoint = $1 AND d.status = 'pending' AND d.due_at <= now()
            AND (d.claim_until IS NULL OR d.claim_until <= now())
            AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e
                             WHERE e.name = $1 AND (e.paused OR coalesce(e.backoff_until > now(), false)))
          ORDER BY d.seq LIMIT $3
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE webhook_deliveries w
          SET claim_owner = $2, claim_until = now() + make_interval(secs => $4::double precision / 1000)
         FROM due WHERE w.endpoint = due.endpoint AND w.event_id = due.event_id
       RETURNING w.event_id AS "eventId", w.payload, w.attempts, w.seq, w.traceparent`,
      [endpoint, owner, limit, claimMs],
    );
    return (rows as (ClaimedDelivery & { seq: number })[])
      .sort((a, b) => a.seq - b.seq)
      .map(({ eventId, payload, attempts, traceparent }) => ({ eventId, payload, attempts, traceparent }));
  }

  /**
   * Records the POST of `eventIds` (claimed by `owner`): the log row, and each delivery delivered,
   * due again after `retryAfterMs`, or dead once it has had `maxAttempts`; the endpoint's run of
   * failures, and its backoff once that run reaches `threshold`. Rows whose claim `owner` lost
   * (it lapsed and another replica took them) are left to that replica.
   */
  async recordAttempt(endpoint: string, owner: string, eventIds: readonly string[], attempt: AttemptRecord, outcome: DeliveryOutcome): Promise<void> {
    await this.q.query(
      `INSERT INTO webhook_attempts (endpoint, event_ids, status_code, latency_ms, error, response_snippet) VALUES ($1, $2::uuid[], $3, $4, $5, $6)`,
      [endpoint, eventIds, attempt.status, attempt.latencyMs, attempt.error, attempt.snippet],
    );
    const last = [attempt.status, attempt.error, attempt.latencyMs];
    if (outcome.delivered) {
      await this.q.query(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, claim_owner = NULL, claim_until = NULL,
                last_status = $4, last_error = $5, last_latency_ms = $6, updated_at = now()
          WHERE endpoint = $1 AND event_id = ANY($3::uuid[]) AND claim_owner = $2`,
        [endpoint, owner, eventIds, ...last],
      );
      await this.q.query(
        `INSERT INTO webhook_endpoints (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET failures = 0, backoff_until = NULL`,
        [endpoint],
      );
      return;
    }
    await this.q.query(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, claim_owner = NULL, claim_until = NULL,
              status = CASE WHEN attempts + 1 >= $7 THEN 'dead' ELSE 'pending' END,
              due_at = now() + make_interval(secs => $8::double precision / 1000),
              last_status = $4, last_error = $5, last_latency_ms = $6, updated_at = now()
        WHERE endpoint = $1 AND event_id = ANY($3::uuid[]) AND claim_owner = $2`,
      [endpoint, owner, eventIds, ...last, outcome.maxAttempts, outcome.retryAfterMs],
    );
    await this.q.query(
      `INSERT INTO webhook_endpoints AS e (name, failures) VALUES ($1, 1)
       ON CONFLICT (name) DO UPDATE SET failures = e.failures + 1,
         backoff_until = CASE WHEN e.failures + 1 >= $2 THEN now() + make_interval(secs => $3::double precision / 1000) ELSE e.backoff_until END`,
      [endpoint, outcome.threshold, outcome.endpointBackoffMs],
    );
  }

  /** Pauses or resumes an endpoint (a paused endpoint keeps queueing, and sends nothing). */
  async setPaused(endpoint: string, paused: boolean): Promise<void> {
    await this.q.query(
      `INSERT INTO webhook_endpoints (name, paused) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET paused = $2`,
      [endpoint, paused],
    );
  }

  /**
   * Makes deliveries of `endpoint` pending again with a fresh count of attempts, due now: every
   * dead one, or the one of `eventId` whether dead or delivered; also ends the endpoint's
   * backoff. How many it revived.
   */
  async redeliver(endpoint: string, eventId?: string): Promise<number> {
    const revive = `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, due_at = now(), updated_at = now() WHERE endpoint = $1`;
    const { affected } = eventId
      ? await this.q.query(`${revive} AND event_id = $2::uuid AND status <> 'pending'`, [endpoint, eventId])
      : await this.q.query(`${revive} AND status = 'dead'`, [endpoint]);
    await this.q.query('UPDATE webhook_endpoints SET backoff_until = NULL, failures = 0 WHERE name = $1', [endpoint]);
    return affected;
  }

  /** The state and lag of each endpoint in `names`. */
  async endpointStates(names: readonly string[]): Promise<WebhookEndpointState[]> {
    const { rows } = await this.q.query<WebhookEndpointState>(
      `SELECT n.name, coalesce(e.paused, false) AS paused, coalesce(e.failures, 0) AS failures, e.backoff_until AS "backoffUntil",
              (SELECT count(*)::int FROM webhook_deliveries d WHERE d.endpoint = n.name AND d.status = 'pending') AS pending,
              (SELECT count(*)::int FROM webhook_deliveries d WHERE d.endpoint = n.name AND d.status = 'dead') AS dead,
              (SELECT count(*)::int FROM webhook_deliveries d WHERE d.endpoint = n.name AND d.status = 'delivered') AS delivered,
              (SELECT extract(epoch FROM now() - min(d.created_at))::float8 FROM webhook_deliveries d
                WHERE d.endpoint = n.name AND d.status = 'pending') AS "oldestPendingSeconds"
         FROM unnest($1::text[]) AS n(name) LEFT JOIN webhook_endpoints e ON e.name = n.name
        ORDER BY n.name`,
      [names],
    );
    return rows;
  }

  /** Deliveries, newest first, of one endpoint or all, optionally in one state. */
  async listDeliveries(filter: { endpoint?: string; status?: string; limit: number }): Promise<WebhookDelivery[]> {
    const { rows } = await this.q.query<WebhookDelivery>(
      `SELECT endpoint, event_id AS "eventId", repository, action, status, attempts, due_at AS "dueAt", last_status AS "lastStatus",
              last_error AS "lastError", last_latency_ms AS "lastLatencyMs", created_at AS "createdAt", updated_at AS "updatedAt"
         FROM webhook_deliveries
        WHERE ($1::text IS NULL OR endpoint = $1) AND ($2::text IS NULL OR status = $2)
        ORDER BY seq DESC LIMIT $3`,
      [filter.endpoint ?? null, filter.status ?? null, filter.limit],
    );
    return rows;
  }

  /** The delivery log of an endpoint, newest first. */
  async listAttempts(endpoint: string, limit: number): Promise<WebhookAttempt[]> {
    const { rows } = await this.q.query<WebhookAttempt>(
      `SELECT id::float8 AS id, endpoint, event_ids AS "eventIds", attempted_at AS "attemptedAt", status_code AS "statusCode",
              latency_ms AS "latencyMs", error, response_snippet AS "responseSnippet"
         FROM webhook_attempts WHERE endpoint = $1 ORDER BY id DESC LIMIT $2`,
      [endpoint, limit],
    );
    return rows;
  }

  /** Deletes delivered and dead deliveries, and log rows, older than `retentionMs`; how many deliveries went. */
  async prune(retentionMs: number): Promise<number> {
    const age = [retentionMs];
    const { affected } = await this.q.query(
      `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < now() - make_interval(secs => $1::double precision / 1000)`,
      age,
    );
    await this.q.query(`DELETE FROM webhook_attempts WHERE attempted_at < now() - make_interval(secs => $1::double precision / 1000)`, age);
    return affected;
  }
}
