import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox's unsent events get a narrow table of their own, and the envelope is kept as the
 * text the relay sends.
 *
 * - `event_outbox_unsent` (seq, repository, created_at) holds a row per event not yet relayed;
 *   the append writes it in the same statement as the event. Claims and reads walk it instead of
 *   partial indexes on the wide table, and marking a batch sent deletes its narrow rows. Before,
 *   a mark was an UPDATE of `sent_at` on every wide row (about 1 KB each): a new row version, not
 *   HOT (the partial indexes name `sent_at`), so an entry in each of three indexes, and as much
 *   again to vacuum. No foreign key: an event has its narrow row from its own INSERT on, and the
 *   pruner only deletes events that have none. Its one index is the primary key, on purpose: the
 *   table is usually near empty, so its statistics say so when a burst arrives, and the planner
 *   then takes any index for free; with a (repository, seq) index it marked 2,000 events by `seq =
 *   ANY(…)` through that one, 8 s instead of 20 ms. Reads by repository walk the key in seq order.
 * - `sent_at` goes: an event is sent once it has no narrow row. Pruning counts the retention from
 *   when an event was written (`created_at`, a BRIN index: events are appended in time order, and
 *   a BRIN index costs an append next to nothing) and never takes an unsent event.
 * - `payload` becomes `json`: the text as written (the envelope in the reference registry's field
 *   order, see `encodeRegistryEvent`), which the relay puts on the bus as it is; `jsonb` re-sorted
 *   the keys, so every relayed event was parsed and encoded again. Rows written before this
 *   migration keep `jsonb`'s key order (the same envelope, its keys in another order).
 */
export class OutboxUnsentQueue1765500000000 implements MigrationInterface {
  name = 'OutboxUnsentQueue1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE event_outbox_unsent (
        seq bigint PRIMARY KEY,
        repository text NOT NULL,
        created_at timestamptz NOT NULL
      );
      INSERT INTO event_outbox_unsent (seq, repository, created_at)
        SELECT seq, repository, created_at FROM event_outbox WHERE sent_at IS NULL;
      DROP INDEX event_outbox_unsent_idx;
      DROP INDEX event_outbox_unsent_repository_idx;
      DROP INDEX event_outbox_sent_idx;
      ALTER TABLE event_outbox DROP COLUMN sent_at, ALTER COLUMN payload TYPE json USING payload::json;
      CREATE INDEX event_outbox_created_brin ON event_outbox USING brin (created_at);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX event_outbox_created_brin;
      ALTER TABLE event_outbox ADD COLUMN sent_at timestamptz, ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
      UPDATE event_outbox o SET sent_at = now() WHERE NOT EXISTS (SELECT 1 FROM event_outbox_unsent u WHERE u.seq = o.seq);
      DROP TABLE event_outbox_unsent;
      CREATE INDEX event_outbox_unsent_idx ON event_outbox (seq) WHERE sent_at IS NULL;
      CREATE INDEX event_outbox_unsent_repository_idx ON event_outbox (repository, seq) WHERE sent_at IS NULL;
      CREATE INDEX event_outbox_sent_idx ON event_outbox (sent_at) WHERE sent_at IS NOT NULL;
    `);
  }
}
