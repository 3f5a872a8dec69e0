import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A webhook delivery row remembers the W3C `traceparent` of the event it delivers (the consumer's
 * span that queued it), so the POST, whenever and wherever it runs, continues that trace and
 * sends it to the endpoint.
 */
export class WebhookDeliveryTrace1765800000000 implements MigrationInterface {
  name = 'WebhookDeliveryTrace1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE webhook_deliveries ADD COLUMN traceparent text');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE webhook_deliveries DROP COLUMN traceparent');
  }
}
