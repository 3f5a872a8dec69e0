import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The one-time nonces of the gateway's signed requests, so that a captured request cannot be
 * replayed to any replica of a service while its signature is still fresh. Pruned by expiry.
 */
export class RequestNonces1764930000000 implements MigrationInterface {
  name = 'RequestNonces1764930000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE request_nonces (
        nonce text PRIMARY KEY,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX request_nonces_expires_at ON request_nonces (expires_at);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE request_nonces');
  }
}
