import type { ConnectionOptions } from 'node:tls';
import { context, SpanKind } from '@opentelemetry/api';
import { Kafka, logLevel, Partitioners, type Admin, type ICustomPartitioner, type IHeaders, type KafkaConfig, type LogEntry, type Message, type Producer, type SASLOptions } from 'kafkajs';
import { encodeRegistryEvent, otelCore, REGISTRY_EVENT_HEADERS, tracingActive, withSpansEach } from '@lading/contracts';
import type { BusEvent, BusHealth, EventBus, EventHandler, EventSubscription } from './event-bus.port';
import { KafkaEventConsumer } from './kafka.event-consumer';

/** Where a bus writes what it has to say: state changes at `log`/`warn`, the client library's own chatter at `debug`. */
export interface BusLogger {
  log(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** A Kafka cluster and the topic of registry events. */
export interface KafkaBusOptions {
  brokers: readonly string[];
  clientId: string;
  topic: string;
  /** Of a topic this bus creates. */
  partitions: number;
  /** Of a topic this bus creates; default 3, or the cluster's broker count when smaller. */
  replicationFactor?: number;
  logger?: BusLogger;
  /** Largest sum of record sizes in one produce request; a larger publish goes out in several, in order. Default 512 KiB. */
  maxRequestBytes?: number;
  /** Without a publish for this long, readiness asks the cluster whether it answers. Default 5 s. */
  probeIntervalMs?: number;
  /** Idempotent producers, each one request in flight: how many publishes may overlap. Default 1. */
  producers?: number;
  /** TLS to the brokers (CA, client certificate…), for the producers and the subscriptions' consumers alike. */
  tls?: ConnectionOptions;
  /** SASL authentication (PLAIN, SCRAM-SHA-256/512), likewise. */
  sasl?: SASLOptions;
}

const SILENT: BusLogger = { log: () => undefined, warn: () => undefined, debug: () => undefined };
/** acks=all: the leader answers once every in-sync replica has the records. */
const ACKS_ALL = -1;
/** How long the leader may wait for the in-sync replicas' acknowledgements. */
const ACK_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;
/** Default replication factor of a created topic, when the cluster has that many brokers. */
const DEFAULT_REPLICATION = 3;

/**
 * The event bus on Kafka. Publishing uses kafkajs directly: the relay needs one produce request
 * per batch with a definite answer for all of it, which `@nestjs/microservices`' `ClientKafka`
 * (one record per `emit`, fire-and-forget observables) does not give. Subscriptions are consumers
 * like any user's, through `@nestjs/microservices`' Kafka transport ({@link KafkaEventConsumer}).
 *
 * Producers: idempotent (the broker drops a retried duplicate of a batch it already has), acks=all,
 * one request in flight each (what kafkajs's idempotent producer needs to keep sequence numbers,
 * and order, right). `producers` of them take publishes side by side, one publish per producer at
 * a time, so a publish's events keep their order; overlapping publishes have none between them.
 * After any failure every producer is thrown away and new ones (new producer ids) are made on the
 * next publish, so a resend never trips over stale sequence numbers; such a resend can duplicate
 * events, which consumers drop by id. Records: key = repository (the default,
 * Java-compatible partitioner sends a repository to one partition, so its order holds), value =
 * the envelope in Distribution's field order, headers = id, envelope version, traceparent.
 */
export class KafkaEventBus implements EventBus {
  private readonly kafka: Kafka;
  private readonly logger: BusLogger;
  /** The connected producers, and those of them no publish is using. */
  private producers: Producer[] = [];
  private free: Producer[] = [];
  /** Publishes waiting for a free producer. */
  private waiting: Array<() => void> = [];
  private admin?: Admin;
  private topicReady = false;
  private connecting?: Promise<void>;
  private probing?: Promise<void>;
  private lastContact = 0;
  private status: { state: BusHealth['state']; since: string; detail?: string };
  /** The client settings, shared by the relay's producer and the subscriptions' consumers. */
  private readonly client: KafkaConfig;
  private readonly consumers = new Set<KafkaEventConsumer>();
  private closed = false;

  constructor(private readonly options: KafkaBusOptions) {
    this.logger = options.logger ?? SILENT;
    this.client = {
      clientId: options.clientId,
      brokers: [...options.brokers],
      ssl: options.tls,
      sasl: options.sasl,
      connectionTimeout: 3_000,
      requestTimeout: ACK_TIMEOUT_MS + 5_000,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2_000 },
      // kafkajs logs every failed connection attempt: to debug, while this bus reports state changes itself.
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => this.logger.debug(`kafkajs ${entry.namespace}: ${entry.log.message}`),
    };
    this.kafka = new Kafka(this.client);
    this.status = { state: 'connecting', since: new Date().toISOString(), detail: this.where() };
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the event bus is closed'));
    if (this.producers.length > 0 && this.topicReady) return Promise.resolve();
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  get parallelPublishes(): number {
    return this.options.producers ?? 1;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    if (events.length === 0) return;
    const producer = await this.acquire();
    try {
      await produceSpans(this.options.topic, events, async (traceparents) => {
        const all = events.map((e, i) => toMessage(e, traceparents[i]));
        for (const messages of chunks(all, this.options.maxRequestBytes ?? 512 * 1024)) {
          // The records carry their own contexts (the spans above): kafkajs's instrumentation
          // would give every record of a send the one active context, and overwrite theirs.
          const send = () => producer.send({ topic: this.options.topic, acks: ACKS_ALL, timeout: ACK_TIMEOUT_MS, messages });
          await (tracingActive() ? context.with(otelCore().suppressTracing(context.active()), send) : send());
        }
      });
      this.contact();
    } catch (e) {
      await this.fail(e);
      throw e;
    } finally {
      this.release(producer);
    }
  }

  health(): BusHealth {
    if (!this.closed && Date.now() - this.lastContact > (this.options.probeIntervalMs ?? 5_000)) this.probe();
    return { kind: 'kafka', ...this.status };
  }

  /**
   * A consumer group `group` on the topic through `@nestjs/microservices` ({@link KafkaEventConsumer}),
   * from its committed position (the earliest retained record for a new group), committing each
   * record only after its handler resolved. Resolves once the group has joined (the topic exists
   * first: this bus creates it when missing).
   */
  async subscribe(group: string, handler: EventHandler): Promise<EventSubscription> {
    await this.connect();
    const consumer = new KafkaEventConsumer({ client: this.client, topic: this.options.topic, group, handler, logger: this.logger });
    this.consumers.add(consumer);
    try {
      await consumer.open();
      await withTimeout(consumer.joined, 60_000, `consumer group ${group} did not join`);
    } catch (e) {
      this.consumers.delete(consumer);
      await consumer.close().catch(() => undefined);
      throw e;
    }
    return {
      health: () => consumer.health(),
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.close();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.consumers].map((c) => c.close()));
    this.consumers.clear();
    await this.probing?.catch(() => undefined);
    await this.dropClients();
  }

  private async open(): Promise<void> {
    try {
      if (!this.admin) {
        this.admin = this.kafka.admin({ retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1_000 } });
        await this.admin.connect();
      }
      if (!this.topicReady) {
        await this.ensureTopic(this.admin);
        this.topicReady = true;
      }
      if (this.producers.length === 0) {
        const producers = Array.from({ length: this.parallelPublishes }, () =>
          this.kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
            createPartitioner: keyCachingPartitioner(Partitioners.DefaultPartitioner),
            retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
          }),
        );
        const connected = await Promise.allSettled(producers.map((p) => p.connect()));
        const failed = connected.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) {
          await Promise.allSettled(producers.map((p) => p.disconnect()));
          throw failed.reason;
        }
        this.producers = producers;
        this.free = [...producers];
      }
      this.contact();
    } catch (e) {
      await this.fail(e);
      throw e;
    }
  }

  private async ensureTopic(admin: Admin): Promise<void> {
    const { topic, partitions } = this.options;
    const existing = await admin.listTopics();
    if (existing.includes(topic)) return;
    const brokers = (await admin.describeCluster()).brokers.length;
    const replicationFactor = this.options.replicationFactor ?? Math.max(1, Math.min(DEFAULT_REPLICATION, brokers));
    // false: another process created it meanwhile.
    const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor }] });
    if (created) this.logger.log(`created topic ${topic} (${partitions} partitions, replication factor ${replicationFactor})`);
  }

  /** Asks the cluster whether it answers, off the caller's path; the next `health()` shows the outcome. */
  private probe(): void {
    if (this.probing || this.connecting) return;
    this.probing = (async () => {
      try {
        if (this.producers.length === 0 || !this.topicReady) await this.connect();
        else await withTimeout(this.admin!.describeCluster(), PROBE_TIMEOUT_MS, 'no answer from the cluster');
        this.contact();
      } catch (e) {
        await this.fail(e);
      }
    })().finally(() => (this.probing = undefined));
  }

  private contact(): void {
    this.lastContact = Date.now();
    if (this.status.state !== 'up') {
      if (this.status.state === 'down') this.logger.log(`Kafka reachable again (${this.where()})`);
      this.status = { state: 'up', since: new Date().toISOString(), detail: this.where() };
    }
  }

  private async fail(e: unknown): Promise<void> {
    const detail = `${(e as Error).message} (${this.where()})`;
    if (this.status.state !== 'down') {
      this.logger.warn(`Kafka unreachable: ${detail}; events wait in the outbox`);
      this.status = { state: 'down', since: new Date().toISOString(), detail };
    } else this.status = { ...this.status, detail };
    await this.dropClients();
  }

  /** A producer no other publish is using, once there is one (connecting first when there are none). */
  private async acquire(): Promise<Producer> {
    for (;;) {
      await this.connect();
      const producer = this.free.pop();
      if (producer) return producer;
      await new Promise<void>((wake) => this.waiting.push(wake));
    }
  }

  /** Gives a producer back (unless it was thrown away meanwhile) and wakes a waiting publish. */
  private release(producer: Producer): void {
    if (this.producers.includes(producer)) this.free.push(producer);
    this.waiting.shift()?.();
  }

  /** Forgets the producers and admin client: the next use makes new ones (new idempotent producer ids). */
  private async dropClients(): Promise<void> {
    const [producers, admin] = [this.producers, this.admin];
    this.producers = [];
    this.free = [];
    this.admin = undefined;
    // Publishes waiting for a producer try again: they connect anew.
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.allSettled([...producers.map((p) => p.disconnect()), admin?.disconnect()]);
  }

  private where(): string {
    return `brokers ${this.options.brokers.join(',')}, topic ${this.options.topic}`;
  }
}

/** One `send <topic>` producer span per record, each a child of its event's trace, as the messaging conventions describe. */
function produceSpans(topic: string, events: readonly BusEvent[], send: (traceparents: (string | null)[]) => Promise<void>): Promise<void> {
  return withSpansEach(
    `send ${topic}`,
    SpanKind.PRODUCER,
    events.map((e) => e.traceparent),
    (i) => ({
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': topic,
        'messaging.kafka.message.key': events[i].repository,
        'messaging.message.id': events[i].id,
      },
    }),
    send,
  );
}

/** Keys whose partition one producer's partitioner remembers (repositories); past this it starts over. */
const PARTITION_CACHE_KEYS = 50_000;

/**
 * `partitioner`, remembering the partition of each key for as long as the topic's partition count
 * stays the same. The default partitioner hashes every record's key (murmur2) and filters the
 * partition list again for each: about a tenth of the relay's CPU, for a repository's same answer.
 */
export function keyCachingPartitioner(partitioner: ICustomPartitioner): ICustomPartitioner {
  return () => {
    const inner = partitioner();
    const cache = new Map<string, { partitions: number; partition: number }>();
    return (args) => {
      const { key, partition } = args.message;
      if ((partition !== undefined && partition !== null) || typeof key !== 'string') return inner(args);
      const partitions = args.partitionMetadata.length;
      const known = cache.get(key);
      if (known?.partitions === partitions) return known.partition;
      const chosen = inner(args);
      if (cache.size >= PARTITION_CACHE_KEYS) cache.clear();
      cache.set(key, { partitions, partition: chosen });
      return chosen;
    };
  };
}

/** The record of `e`, its trace context `traceparent` (not a copy of `e`: that would parse its envelope). */
function toMessage(e: BusEvent, traceparent = e.traceparent): Message {
  const headers: IHeaders = {
    [REGISTRY_EVENT_HEADERS.id]: e.id,
    [REGISTRY_EVENT_HEADERS.envelopeVersion]: String(e.envelopeVersion),
  };
  if (traceparent) headers[REGISTRY_EVENT_HEADERS.traceparent] = traceparent;
  return { key: e.repository, value: e.encoded ?? encodeRegistryEvent(e.event), headers };
}

/** Splits `messages`, in order, into runs whose keys and values add up to at most `maxBytes` (a run has at least one). */
function* chunks(messages: Message[], maxBytes: number): Iterable<Message[]> {
  let run: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.value as string) + Buffer.byteLength(m.key as string) + 128;
    if (run.length > 0 && bytes + size > maxBytes) {
      yield run;
      run = [];
      bytes = 0;
    }
    run.push(m);
    bytes += size;
  }
  if (run.length > 0) yield run;
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
