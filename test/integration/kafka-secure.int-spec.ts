import { eventBusConfig } from '@lading/app-notifications';
import { createEventBus, type EventBus } from '@lading/events';
import { loadConfig } from '@lading/nest-common';
import { eventually, testBusEvent } from '@lading/testing';
import { PRIVATE_KAFKA_USERS, startPrivateKafka, uniqueTopic, type PrivateKafka } from '../support/kafka';

/**
 * The Kafka bus against a broker that takes only SASL_SSL from clients (a private broker: a
 * certificate from a CA made by the test, PLAIN and SCRAM-SHA-512 users), configured the way an
 * operator does it: `kafka.tls.*` and `kafka.sasl.*` through the environment, turned into the bus
 * by the notifications app's own `eventBusConfig`. The relay's producers and the webhook
 * consumers share that client configuration.
 */
describe('the Kafka bus over TLS with SASL', () => {
  let kafka: PrivateKafka;
  beforeAll(async () => {
    kafka = await startPrivateKafka({ secure: true });
  }, 180_000);
  afterAll(async () => {
    await kafka?.destroy();
  });

  function busWith(env: Record<string, string>): EventBus {
    const config = loadConfig({
      LADING_KAFKA_BROKERS: kafka.brokers.join(','),
      LADING_KAFKA_TLS_ENABLED: 'true',
      LADING_KAFKA_TLS_CA: kafka.tls!.caFile,
      LADING_NOTIFICATIONS_KAFKA_TOPIC: uniqueTopic('secure'),
      LADING_NOTIFICATIONS_KAFKA_PARTITIONS: '1',
      ...env,
    });
    return createEventBus(eventBusConfig(config));
  }

  const sasl = (mechanism: string, user: { username: string; password: string }) => ({
    LADING_KAFKA_SASL_MECHANISM: mechanism,
    LADING_KAFKA_SASL_USERNAME: user.username,
    LADING_KAFKA_SASL_PASSWORD: user.password,
  });

  for (const [mechanism, user] of [
    ['plain', PRIVATE_KAFKA_USERS.plain],
    ['scram-sha-512', PRIVATE_KAFKA_USERS.scram],
  ] as const) {
    it(`publishes and consumes with SASL ${mechanism} over TLS`, async () => {
      const bus = busWith(sasl(mechanism, user));
      try {
        const got: string[] = [];
        const subscription = await bus.subscribe(`lading-secure-${mechanism}`, async (e) => void got.push(e.id));
        const events = [testBusEvent('secure/a', 1), testBusEvent('secure/a', 2)];
        await bus.publish(events);
        await eventually(() => got.length >= events.length, 60_000, 'both events');
        expect(got).toEqual(events.map((e) => e.id));
        expect(bus.health().state).toBe('up');
        await subscription.close();
      } finally {
        await bus.close();
      }
    }, 120_000);
  }

  it('cannot connect with a wrong password, or without the CA that signed the broker: connect rejects and health says down', async () => {
    const { plain } = PRIVATE_KAFKA_USERS;
    const wrongPassword = busWith(sasl('plain', { ...plain, password: 'not-the-password' }));
    // No CA of its own: the system's roots, which do not know the test's CA.
    const noCa = createEventBus(
      eventBusConfig(loadConfig({ LADING_KAFKA_BROKERS: kafka.brokers.join(','), LADING_KAFKA_TLS_ENABLED: 'true', LADING_NOTIFICATIONS_KAFKA_TOPIC: uniqueTopic('secure'), ...sasl('plain', plain) })),
    );
    for (const bus of [wrongPassword, noCa]) {
      try {
        await expect(bus.connect()).rejects.toThrow();
        expect(bus.health().state).toBe('down');
        await expect(bus.publish([testBusEvent('secure/b', 1)])).rejects.toThrow();
      } finally {
        await bus.close();
      }
    }
  }, 120_000);

  it('refuses settings that cannot work, at start, naming the key', () => {
    expect(() => loadConfig({ LADING_KAFKA_SASL_MECHANISM: 'plain' })).toThrow('kafka.sasl.mechanism needs kafka.sasl.username and kafka.sasl.password');
    expect(() => loadConfig({ LADING_KAFKA_SASL_MECHANISM: 'gssapi', LADING_KAFKA_SASL_USERNAME: 'u', LADING_KAFKA_SASL_PASSWORD: 'p' })).toThrow('kafka.sasl.mechanism');
    expect(() => loadConfig({ LADING_KAFKA_TLS_ENABLED: 'true', LADING_KAFKA_TLS_CERT: '/x.pem' })).toThrow('kafka.tls.cert and kafka.tls.key go together');
    const missing = loadConfig({ LADING_KAFKA_BROKERS: kafka.brokers.join(','), LADING_KAFKA_TLS_ENABLED: 'true', LADING_KAFKA_TLS_CA: '/nonexistent/ca.pem' });
    expect(() => eventBusConfig(missing)).toThrow('kafka.tls.ca: cannot read /nonexistent/ca.pem');
  });
});
