import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { REGISTRY_EVENT_HEADERS, type RegistryEvent } from '@lading/contracts';
import { freePort, startSplit, type LadingProcess, type SplitStack } from './registry-processes';

/** The shared test broker (`eval "$(scripts/services env)"`). */
export function sharedKafkaBrokers(): string[] {
  const brokers = (process.env.LADING_TEST_KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) throw new Error('LADING_TEST_KAFKA_BROKERS is not set: run `eval "$(scripts/services env)"`');
  return brokers;
}

/** A topic name no other test run uses. */
export function uniqueTopic(what: string): string {
  return `lading.test.${what}.${randomBytes(5).toString('hex')}`;
}

/** One record of the events topic as a plain consumer reads it. */
export interface EventRecord {
  /** The `lading-event-id` header. */
  id: string;
  /** The record key: the repository. */
  key: string;
  partition: number;
  event: RegistryEvent;
}

/**
 * A plain kafkajs consumer reading a topic from the beginning into `records`, in arrival order
 * (within a partition, the topic's order).
 */
export class TopicReader {
  readonly records: EventRecord[] = [];
  private constructor(
    private readonly consumer: Consumer,
    private readonly kafka: Kafka,
    readonly topic: string,
  ) {}

  /** Starts reading `topic` (creating nothing: it waits for the relay to create it). */
  static async start(brokers: string[], topic: string): Promise<TopicReader> {
    const kafka = new Kafka({ clientId: 'lading-test-reader', brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `reader-${randomBytes(5).toString('hex')}`, allowAutoTopicCreation: false });
    const reader = new TopicReader(consumer, kafka, topic);
    await consumer.connect();
    // The relay creates the topic on its first contact; subscribe once it exists.
    const admin = kafka.admin();
    await admin.connect();
    try {
      const deadline = Date.now() + 60_000;
      while (!(await admin.listTopics()).includes(topic)) {
        if (Date.now() > deadline) throw new Error(`topic ${topic} was not created in 60 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await admin.disconnect();
    }
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const event = JSON.parse(message.value!.toString()) as RegistryEvent;
        reader.records.push({ id: String(message.headers?.[REGISTRY_EVENT_HEADERS.id] ?? event.id), key: message.key!.toString(), partition, event });
      },
    });
    return reader;
  }

  /** Distinct event ids read so far. */
  ids(): Set<string> {
    return new Set(this.records.map((r) => r.id));
  }

  /** Waits until every id of `ids` was read. @throws naming how many are missing after `ms`. */
  async waitForIds(ids: Iterable<string>, ms: number): Promise<void> {
    const want = [...ids];
    const deadline = Date.now() + ms;
    for (;;) {
      const have = this.ids();
      const missing = want.filter((id) => !have.has(id)).length;
      if (missing === 0) return;
      if (Date.now() > deadline) throw new Error(`${missing} of ${want.length} events did not arrive on ${this.topic} in ${ms} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops reading and deletes the topic. */
  async close(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [this.topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/** Ids read more than once, with how many extra copies in all: at-least-once's resends. */
export function duplicatesOf(records: readonly EventRecord[]): { events: number; copies: number } {
  const seen = new Map<string, number>();
  for (const r of records) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  const dup = [...seen.values()].filter((n) => n > 1);
  return { events: dup.length, copies: dup.reduce((a, n) => a + n - 1, 0) };
}

/**
 * Per repository, the ids in the order they first arrived compared with `expected` (repository →
 * ids in outbox seq order): the repositories whose order differs, empty when every one holds.
 */
export function orderViolations(records: readonly EventRecord[], expected: ReadonlyMap<string, readonly string[]>): string[] {
  const firstSeen = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    firstSeen.set(r.key, [...(firstSeen.get(r.key) ?? []), r.id]);
  }
  const bad: string[] = [];
  for (const [repository, ids] of expected) {
    const wanted = new Set(ids);
    const got = (firstSeen.get(repository) ?? []).filter((id) => wanted.has(id));
    if (got.join() !== ids.join()) {
      const at = got.findIndex((id, i) => id !== ids[i]);
      bad.push(`${repository}: first difference at ${at} of ${ids.length}`);
    }
  }
  return bad;
}

/** A Kafka broker of the test's own (KRaft, one node, on free ports), to stop and start at will. */
export interface PrivateKafka {
  brokers: string[];
  /** With `secure`: the PEM CA that signed the broker's certificate, and the users it knows. */
  tls?: { caFile: string };
  /** Starts the broker (again, on the same ports and data). */
  start(): Promise<void>;
  /** SIGTERM, and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

/** The users a `secure` private broker knows: SASL/PLAIN and SCRAM-SHA-512 (a password each). */
export const PRIVATE_KAFKA_USERS = { plain: { username: 'lading-plain', password: 'plain-secret-1' }, scram: { username: 'lading-scram', password: 'scram-secret-2' } };

/**
 * Starts a private broker from the Kafka jars `scripts/services` installed (`KAFKA_LIBS`), as a
 * child process stopped by its PID: never the shared one, so a test may take it down. With
 * `secure`, clients get a SASL_SSL listener (a certificate for 127.0.0.1 from a CA made here
 * with openssl; the users of {@link PRIVATE_KAFKA_USERS}), and the broker keeps a plaintext one
 * of its own, for itself and for the readiness check here.
 */
export async function startPrivateKafka(options: { secure?: boolean } = {}): Promise<PrivateKafka> {
  const libs = process.env.KAFKA_LIBS;
  if (!libs) throw new Error('KAFKA_LIBS is not set: run `eval "$(scripts/services env)"`');
  const [port, controller, internal] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'lading-kafka-'));
  const props = join(dir, 'server.properties');
  const { plain, scram } = PRIVATE_KAFKA_USERS;
  const listeners = options.secure
    ? [
        `listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internal},CONTROLLER://127.0.0.1:${controller}`,
        `advertised.listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internal}`,
        'inter.broker.listener.name=INTERNAL',
        'listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512',
        `listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${plain.username}="${plain.password}";`,
        'listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${makeBrokerCertificate(dir)}`,
      ]
    : [
        `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      ];
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      ...listeners,
      'controller.listener.names=CONTROLLER',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'auto.create.topics.enable=false',
      'group.initial.rebalance.delay.ms=0',
      'num.network.threads=1',
      'num.io.threads=2',
    ].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'log4j2.properties'), ['status = error', 'rootLogger.level = warn', 'appender.c.type = Null', 'appender.c.name = null', 'rootLogger.appenderRef.c.ref = null'].join('\n') + '\n');
  const jvm = ['-Xms128m', '-Xmx384m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Djava.net.preferIPv4Stack=true', `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`];
  const scramUser = options.secure ? ['--add-scram', `SCRAM-SHA-512=[name=${scram.username},password=${scram.password}]`] : [];
  const format = spawnSync('java', [...jvm, '-cp', `${libs}/*`, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', 'TGFkaW5nUHJpdkthZmthMQ', '-c', props, ...scramUser], {
    encoding: 'utf8',
  });
  if (format.status !== 0) throw new Error(`kafka storage format failed: ${format.stderr}${format.stdout}`);
  const brokers = [`127.0.0.1:${port}`];
  const checkAt = options.secure ? [`127.0.0.1:${internal}`] : brokers;
  let proc: ChildProcess | undefined;
  let output = '';
  const kafka: PrivateKafka = {
    brokers,
    tls: options.secure ? { caFile: join(dir, 'ca.pem') } : undefined,
    async start() {
      output = '';
      proc = spawn('java', [...jvm, '-Djava.awt.headless=true', `-Dkafka.logs.dir=${dir}`, '-cp', `${libs}/*`, 'kafka.Kafka', props], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout!.on('data', (d) => (output += d));
      proc.stderr!.on('data', (d) => (output += d));
      const admin = new Kafka({ clientId: 'lading-test', brokers: checkAt, logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`private kafka exited with ${proc.exitCode}: ${output}`);
        try {
          await admin.connect();
          await admin.listTopics();
          await admin.disconnect();
          return;
        } catch {
          await admin.disconnect().catch(() => undefined);
          if (Date.now() > deadline) throw new Error(`private kafka not ready in 90 s: ${output}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((ok) => p.once('exit', () => ok()));
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
    async destroy() {
      await kafka.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await kafka.start();
  return kafka;
}

/**
 * The split stack (no gc-worker) on the shared Kafka, its events on a fresh topic named after
 * `what` and relayed without delay (outbox polled every 100 ms, pull events flushed every 200 ms),
 * and `notifications` started after the rest, with `env` laid over all that.
 */
export async function startSplitOnKafka(what: string, env: Record<string, string>): Promise<{ stack: SplitStack; notifications: LadingProcess }> {
  const stack = await startSplit({
    env: {
      LADING_KAFKA_BROKERS: sharedKafkaBrokers().join(','),
      LADING_NOTIFICATIONS_KAFKA_TOPIC: uniqueTopic(what),
      LADING_NOTIFICATIONS_PULLS_FLUSHINTERVAL: '200ms',
      LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '100ms',
      ...env,
    },
    withWorkers: false,
  });
  return { stack, notifications: await stack.startExtra('notifications') };
}

/**
 * A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed, with its unencrypted PKCS#8 key, in
 * `dir`: returns the PEM keystore (key and certificate in one file) the broker reads.
 */
function makeBrokerCertificate(dir: string): string {
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lading test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.pem', '-days', '2', '-extfile', 'san.ext');
  openssl('pkcs8', '-topk8', '-nocrypt', '-in', 'broker.key', '-out', 'broker.pk8');
  const keystore = join(dir, 'keystore.pem');
  writeFileSync(keystore, readFileSync(join(dir, 'broker.pk8'), 'utf8') + readFileSync(join(dir, 'broker.pem'), 'utf8'));
  return keystore;
}
