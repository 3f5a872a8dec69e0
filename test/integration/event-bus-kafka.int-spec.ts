import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { REGISTRY_EVENT_HEADERS } from '@lading/contracts';
import { KafkaEventBus } from '@lading/events';
import { describeEventBus, testBusEvent } from '@lading/testing';

const brokers = (process.env.LADING_TEST_KAFKA_BROKERS ?? '').split(',').filter(Boolean);
if (brokers.length === 0) throw new Error('LADING_TEST_KAFKA_BROKERS is not set: run `eval "$(scripts/services env)"`');

const admin = new Kafka({ clientId: 'lading-test', brokers, logLevel: logLevel.NOTHING }).admin();
const topics: string[] = [];
beforeAll(() => admin.connect());
afterAll(async () => {
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

function busOn(topic: string, partitions = 3): KafkaEventBus {
  topics.push(topic);
  return new KafkaEventBus({ brokers, clientId: 'lading-test', topic, partitions });
}

describeEventBus(
  'kafka',
  async () => {
    const bus = busOn(`lading.test.bus.${randomBytes(6).toString('hex')}`);
    return { bus, cleanup: () => bus.close() };
  },
  60_000,
);

describe('KafkaEventBus', () => {
  it('creates the topic with the configured partitions and writes key = repository, the id and traceparent as headers', async () => {
    const topic = `lading.test.bus.${randomBytes(6).toString('hex')}`;
    const bus = busOn(topic, 4);
    try {
      const e = testBusEvent('bus/app', 1, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      await bus.publish([e]);
      const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      expect(meta.partitions).toHaveLength(4);
      const consumer = new Kafka({ clientId: 'lading-test', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `g-${randomBytes(4).toString('hex')}` });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const got = await new Promise<{ key: string; headers: Record<string, string>; value: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) =>
            resolve({
              key: message.key!.toString(),
              value: message.value!.toString(),
              headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
            }),
        });
      });
      await consumer.disconnect();
      expect(got.key).toBe('bus/app');
      expect(got.headers[REGISTRY_EVENT_HEADERS.id]).toBe(e.id);
      expect(got.headers[REGISTRY_EVENT_HEADERS.traceparent]).toBe(e.traceparent);
      expect(got.headers[REGISTRY_EVENT_HEADERS.envelopeVersion]).toBe('1');
      expect(Object.keys(JSON.parse(got.value) as object)).toEqual(['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
    } finally {
      await bus.close();
    }
  }, 60_000);

  it('reports a cluster it cannot reach as down, with the reason', async () => {
    const bus = new KafkaEventBus({ brokers: ['127.0.0.1:1'], clientId: 'lading-test', topic: 'never', partitions: 1 });
    await expect(bus.connect()).rejects.toThrow();
    expect(bus.health()).toMatchObject({ kind: 'kafka', state: 'down', detail: expect.stringContaining('127.0.0.1:1') });
    await bus.close();
  }, 60_000);
});
