import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The relay of the outbox. A relay process claims whole repositories, not rows: a lease row per
 * repository (`outbox_leases`, owner and expiry by the database's clock) says that one process
 * relays that repository's events now, oldest first, so per-repository order holds with any
 * number of relays and without a global cursor. Unsent rows are found by repository in seq order
 * (`event_outbox_unsent_repository_idx`), and sent ones by age for pruning.
 */
export class OutboxRelay1765200000000 implements MigrationInterface {
  name = 'OutboxRelay1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox_leases (
        repository text PRIMARY KEY,
        owner uuid NOT NULL,
        until timestamptz NOT NULL
      );
      CREATE INDEX event_outbox_unsent_repository_idx ON event_outbox (repository, seq) WHERE sent_at IS NULL;
      CREATE INDEX event_outbox_sent_idx ON event_outbox (sent_at) WHERE sent_at IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX event_outbox_sent_idx;
      DROP INDEX event_outbox_unsent_repository_idx;
      DROP TABLE outbox_leases;
    `);
  }
}
