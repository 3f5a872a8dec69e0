import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Client as MinioClient } from 'minio';
import type { EntityManager } from 'typeorm';
import { METADATA_MIGRATIONS, managerQueryer, openMetadataDb } from '@lading/metadata-db';
import { createTestDatabase } from '../support/registry-processes';

const runSql = <T = Record<string, unknown>>(m: EntityManager, text: string, params: unknown[] = []) =>
  managerQueryer(m).query<T>(text, params);

/**
 * Proves the backends started by `scripts/services` are the real thing: a PostgreSQL query through
 * TypeORM (with Lading's migrations), a Kafka produce-and-consume round trip through kafkajs, and
 * a MinIO put/get/delete through the `minio` client.
 */
function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run scripts/services start and eval "$(scripts/services env)"`);
  return v;
}

describe('PostgreSQL through TypeORM', () => {
  it('migrates a fresh database and runs queries and transactions on the real server', async () => {
    const db = await createTestDatabase();
    try {
      const ds = await openMetadataDb({ url: db.url });
      try {
        const version = await runSql<{ v: string }>(ds.manager, 'SELECT current_setting($1) AS v', ['server_version']);
        expect(version.rows[0].v).toMatch(/^\d+/);
        const { rows } = await runSql<{ n: number }>(ds.manager, 'SELECT count(*)::int AS n FROM schema_migrations');
        expect(rows[0].n).toBeGreaterThanOrEqual(1);
        await expect(
          ds.transaction(async (m) => {
            await runSql(m, `INSERT INTO repositories (name) VALUES ('tx/rolled-back')`);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        const after = await runSql(ds.manager, `SELECT 1 FROM repositories WHERE name = 'tx/rolled-back'`);
        expect(after.rows).toHaveLength(0);
      } finally {
        await ds.destroy();
      }
      // A second open against the migrated database is a no-op, even when two race.
      const [a, b] = await Promise.all([openMetadataDb({ url: db.url }), openMetadataDb({ url: db.url })]);
      const { rows } = await runSql<{ n: number }>(a.manager, 'SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(METADATA_MIGRATIONS.length);
      await Promise.all([a.destroy(), b.destroy()]);
    } finally {
      await db.drop();
    }
  });
});

describe('Kafka through kafkajs', () => {
  it('produces and consumes a message on a fresh topic', async () => {
    const kafka = new Kafka({ clientId: 'lading-smoke', brokers: need('LADING_TEST_KAFKA_BROKERS').split(','), logLevel: logLevel.NOTHING });
    const topic = `lading-smoke-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `g-${topic}` });
    try {
      await producer.connect();
      const value = randomBytes(16).toString('hex');
      await producer.send({ topic, messages: [{ key: 'repo/a', value }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<{ key: string; value: string }>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error('no message within 60s')), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            ok({ key: message.key!.toString(), value: message.value!.toString() });
          },
        });
      });
      expect(received).toEqual({ key: 'repo/a', value });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('MinIO through the minio client', () => {
  it('puts, stats, gets and deletes an object', async () => {
    const endpoint = new URL(need('LADING_TEST_S3_ENDPOINT'));
    const client = new MinioClient({
      endPoint: endpoint.hostname,
      port: Number(endpoint.port),
      useSSL: false,
      accessKey: need('LADING_TEST_S3_ACCESS_KEY'),
      secretKey: need('LADING_TEST_S3_SECRET_KEY'),
    });
    const bucket = `lading-smoke-${randomBytes(4).toString('hex')}`;
    await client.makeBucket(bucket);
    try {
      const body = randomBytes(256 * 1024);
      await client.putObject(bucket, 'blobs/x', body, body.length);
      expect((await client.statObject(bucket, 'blobs/x')).size).toBe(body.length);
      const chunks: Buffer[] = [];
      for await (const c of await client.getObject(bucket, 'blobs/x')) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
      await client.removeObject(bucket, 'blobs/x');
      await expect(client.statObject(bucket, 'blobs/x')).rejects.toMatchObject({ code: 'NotFound' });
    } finally {
      await client.removeBucket(bucket).catch(() => undefined);
    }
  });
});
