/**
 * What the events benchmark reads from and writes to the backends directly: a plain kafkajs
 * consumer on a topic (as any user's consumer reads it), the topic's high-water marks, bulk
 * outbox inserts and the database's own record of when each event was marked sent.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { REGISTRY_EVENT_HEADERS, systemScope, type RegistryEvent } from '@lading/contracts';
import { blobEvent, buildRegistryEvent, MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { withDb } from '../test/support/robustness-stack';

/** One record as the tap read it: when (performance.now() of this process), key, id header and the raw value. */
export interface TappedRecord {
  at: number;
  key: string;
  id: string;
  partition: number;
  value: Buffer;
}

/**
 * A plain kafkajs consumer reading `topic` from the beginning, a batch at a time, into `records`
 * (arrival order; within a partition the topic's order). It keeps the value unparsed, so reading
 * costs little CPU beside the relay it measures; `event(r)` parses one.
 */
export class TopicTap {
  readonly records: TappedRecord[] = [];
  private listeners: Array<(r: TappedRecord) => void> = [];

  private constructor(
    private readonly kafka: Kafka,
    private readonly consumer: Consumer,
    readonly topic: string,
  ) {}

  /** Creates `topic` (so the tap can subscribe before the relay's first publish) and starts reading it. */
  static async start(brokers: string[], topic: string, partitions: number): Promise<TopicTap> {
    const kafka = new Kafka({ clientId: 'lading-bench-tap', brokers, logLevel: logLevel.NOTHING });
    await withAdmin(kafka, (admin) => admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] }));
    const consumer = kafka.consumer({ groupId: `lading-bench-${randomBytes(5).toString('hex')}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
    const tap = new TopicTap(kafka, consumer, topic);
    const joined = new Promise<void>((ok) => consumer.on(consumer.events.GROUP_JOIN, () => ok()));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const at = performance.now();
        for (const m of batch.messages) {
          const header = m.headers?.[REGISTRY_EVENT_HEADERS.id];
          const r: TappedRecord = { at, key: m.key!.toString(), id: String(Array.isArray(header) ? header[0] : header), partition: batch.partition, value: m.value! };
          tap.records.push(r);
          for (const l of tap.listeners) l(r);
        }
      },
    });
    await joined;
    return tap;
  }

  /** Calls `listener` with every record read from now on. */
  onRecord(listener: (r: TappedRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Records on the topic (all partitions' high-water marks), read or not. */
  async onTopic(): Promise<number> {
    return withAdmin(this.kafka, async (admin) => (await admin.fetchTopicOffsets(this.topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0));
  }

  /** Waits until `n` distinct ids were read; returns when the last of them arrived. @throws after `ms`. */
  async waitForCount(n: number, ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const ids = new Set(this.records.map((r) => r.id));
      if (ids.size >= n) return this.records[this.records.length - 1].at;
      if (Date.now() > deadline) throw new Error(`${ids.size} of ${n} events arrived on ${this.topic} in ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops reading and deletes the topic. */
  async close(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    await withAdmin(this.kafka, (admin) => admin.deleteTopics({ topics: [this.topic] })).catch(() => undefined);
  }
}

/** Deletes `topic` (one a relay created and no tap read). */
export async function deleteTopic(brokers: string[], topic: string): Promise<void> {
  const kafka = new Kafka({ clientId: 'lading-bench-admin', brokers, logLevel: logLevel.NOTHING });
  await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: [topic] })).catch(() => undefined);
}

/** The envelope of a tapped record. */
export function eventOf(r: TappedRecord): RegistryEvent {
  return JSON.parse(r.value.toString('utf8')) as RegistryEvent;
}

async function withAdmin<T>(kafka: Kafka, f: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Writes `n` blob push events into the outbox through the store (order locks included), round-robin
 * over `repositories`, all in ONE transaction (multi-row inserts of 1000), so the relays see the
 * whole burst at once. Returns the ids and when the commit returned (performance.now()).
 */
export async function insertBurst(databaseUrl: string, n: number, repositories: readonly string[]): Promise<{ ids: string[]; committedAt: number }> {
  const db = new MetadataDb(await openMetadataDb({ url: databaseUrl, migrate: false, poolSize: 1 }), { source: { instanceID: 'bench-burst' } });
  const ids: string[] = [];
  try {
    await db.transaction(async (tx) => {
      for (let start = 0; start < n; start += 1000) {
        const entries = Array.from({ length: Math.min(1000, n - start) }, (_, i) => {
          const repository = repositories[(start + i) % repositories.length];
          const event = buildRegistryEvent(
            systemScope('upload.complete', repository, randomUUID()),
            blobEvent('push', repository, { digest: `sha256:${randomBytes(32).toString('hex')}`, size: 1024 + start + i }, `http://bench/v2/${repository}/blobs/x`),
            db.source,
          );
          return { event, traceparent: null, tenant: null };
        });
        await tx.outbox.appendMany(entries);
        ids.push(...entries.map((e) => e.event.id));
      }
    });
    return { ids, committedAt: performance.now() };
  } finally {
    await db.close();
  }
}

/** How many of the events `ids` the database has marked sent (they have no unsent row left). */
export async function markedSent(databaseUrl: string, ids: readonly string[]): Promise<number> {
  return withDb(databaseUrl, async (c) => {
    const { rows } = await c.query<{ marked: number }>(
      `SELECT count(*)::int AS marked FROM event_outbox o
        WHERE o.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM event_outbox_unsent u WHERE u.seq = o.seq)`,
      [ids],
    );
    return rows[0].marked;
  });
}

/** Outbox rows not yet marked sent. */
export async function unsentCount(databaseUrl: string): Promise<number> {
  return withDb(databaseUrl, async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM event_outbox_unsent')).rows[0].n);
}
