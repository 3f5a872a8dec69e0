import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhook delivery, per endpoint: `webhook_deliveries` holds one row per (endpoint, event) —
 * the endpoint's own cursor, so one slow or dead endpoint never delays another — with its state
 * (pending, delivered, dead), attempts, when it is due again and the last outcome, and a claim
 * (owner + expiry by the database's clock) so any number of notifications replicas deliver each
 * row once at a time. `webhook_attempts` is the delivery log: one row per POST. `webhook_endpoints`
 * holds what an operator or the failure threshold sets for an endpoint: paused, and backed off
 * until when.
 */
export class WebhookDeliveries1765300000000 implements MigrationInterface {
  name = 'WebhookDeliveries1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE webhook_endpoints (
        name text COLLATE "C" PRIMARY KEY,
        paused boolean NOT NULL DEFAULT false,
        failures integer NOT NULL DEFAULT 0,
        backoff_until timestamptz
      );
      CREATE TABLE webhook_deliveries (
        endpoint text COLLATE "C" NOT NULL,
        event_id uuid NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        repository text NOT NULL,
        action text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        due_at timestamptz NOT NULL DEFAULT now(),
        claim_owner uuid,
        claim_until timestamptz,
        last_status integer,
        last_error text,
        last_latency_ms integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (endpoint, event_id)
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint, seq) WHERE status = 'pending';
      CREATE INDEX webhook_deliveries_done ON webhook_deliveries (updated_at) WHERE status <> 'pending';
      CREATE TABLE webhook_attempts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        endpoint text COLLATE "C" NOT NULL,
        event_ids uuid[] NOT NULL,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        status_code integer,
        latency_ms integer NOT NULL,
        error text,
        response_snippet text NOT NULL DEFAULT ''
      );
      CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint, id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE webhook_attempts; DROP TABLE webhook_deliveries; DROP TABLE webhook_endpoints;');
  }
}
