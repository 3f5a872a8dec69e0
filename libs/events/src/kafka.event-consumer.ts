import { KafkaParser, ServerKafka, type ConsumerDeserializer, type IncomingEvent, type KafkaContext } from '@nestjs/microservices';
import type { KafkaConfig, KafkaMessage } from 'kafkajs';
import { EVENT_ENVELOPE_VERSION, REGISTRY_EVENT_HEADERS, type RegistryEvent } from '@lading/contracts';
import type { DeliveredEvent, EventHandler, HealthState } from './event-bus.port';
import type { BusLogger } from './kafka.event-bus';

/** A record of the events topic that is no event of ours; it is skipped, never handed over. */
export class UndecodableEventError extends Error {
  override readonly name = 'UndecodableEventError';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What PostgreSQL's text and jsonb cannot hold: NUL, and a UTF-16 surrogate without its pair. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A record of the topic as a subscriber sees it, from the record the relay writes (key =
 * repository, value = the envelope, headers = id, envelope version, traceparent).
 * @throws UndecodableEventError when the value is no envelope (not JSON, no uuid `id`, no
 *   `action`, no `target.repository`), or the headers contradict it.
 */
export function decodeEventRecord(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): DeliveredEvent {
  const header = (name: string) => {
    const v = message.headers?.[name];
    const one = Array.isArray(v) ? v[0] : v;
    return one === undefined ? undefined : one.toString();
  };
  if (!message.value || message.value.length === 0) throw new UndecodableEventError('the record has no value');
  let value: unknown;
  try {
    value = JSON.parse(message.value.toString('utf8'));
  } catch (e) {
    throw new UndecodableEventError(`the value is not JSON (${(e as Error).message})`);
  }
  if (holdsUnstorable(value)) throw new UndecodableEventError('the envelope holds a NUL character or a lone UTF-16 surrogate, which no delivery row can store');
  const event = envelopeOf(value);
  const id = header(REGISTRY_EVENT_HEADERS.id) ?? event.id;
  if (id !== event.id) throw new UndecodableEventError(`the id header ${id} is not the envelope's id ${event.id}`);
  const envelopeVersion = Number(header(REGISTRY_EVENT_HEADERS.envelopeVersion) ?? EVENT_ENVELOPE_VERSION);
  if (!Number.isInteger(envelopeVersion) || envelopeVersion < 1) throw new UndecodableEventError('the envelope version header is no version');
  return {
    id,
    repository: message.key?.toString('utf8') ?? event.target.repository,
    envelopeVersion,
    traceparent: header(REGISTRY_EVENT_HEADERS.traceparent) ?? null,
    event,
  };
}

/**
 * Whether a string in `value` (keys included) holds what PostgreSQL refuses: such a record would
 * fail its delivery row's insert on every attempt and hold its endpoint's stream up for good.
 */
function holdsUnstorable(value: unknown): boolean {
  if (typeof value === 'string') return UNSTORABLE.test(value);
  if (Array.isArray(value)) return value.some(holdsUnstorable);
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([k, v]) => UNSTORABLE.test(k) || holdsUnstorable(v));
  return false;
}

/** `value` as an envelope, checked for what consumers rely on. @throws UndecodableEventError */
function envelopeOf(value: unknown): RegistryEvent {
  const v = value as { id?: unknown; action?: unknown; target?: { repository?: unknown } | null } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UndecodableEventError('the value is not an event envelope');
  if (typeof v.id !== 'string' || !UUID.test(v.id)) throw new UndecodableEventError('the envelope has no uuid id');
  if (typeof v.action !== 'string' || v.action === '') throw new UndecodableEventError('the envelope has no action');
  if (typeof v.target !== 'object' || v.target === null || typeof v.target.repository !== 'string') {
    throw new UndecodableEventError('the envelope has no target repository');
  }
  return v as unknown as RegistryEvent;
}

/** What {@link EventRecordDeserializer} makes of a record: the event, or why it is none. */
export type EventRecord = { readonly event: DeliveredEvent; readonly error?: undefined } | { readonly event?: undefined; readonly error: string };

/**
 * Nest's deserializer for the events topic: the packet of a record is routed by its topic, and
 * its data is the {@link EventRecord} (never a throw: a throw would fail the record again and
 * again, holding up its partition).
 */
export class EventRecordDeserializer implements ConsumerDeserializer {
  deserialize(message: KafkaMessage, options?: { channel?: string }): IncomingEvent {
    let data: EventRecord;
    try {
      data = { event: decodeEventRecord(message) };
    } catch (e) {
      data = { error: e instanceof UndecodableEventError ? e.message : `undecodable: ${(e as Error).message}` };
    }
    return { pattern: options?.channel, data };
  }
}

/** Leaves a record as kafkajs delivered it (bytes), for {@link decodeEventRecord}; Nest's parser would guess at JSON and strings. */
class RawRecordParser extends KafkaParser {
  override parse<T>(data: unknown): T {
    return data as T;
  }
}

/**
 * A handler's failure as kafkajs should see it: retriable. kafkajs gives up on a consumer for
 * good after a TypeError or SyntaxError (it restarts only after retriable ones), which would
 * stop a subscription silently over one bad moment.
 */
class EventNotTakenError extends Error {
  override readonly name = 'EventNotTakenError';
  readonly retriable = true;
}

/** Options of a {@link KafkaEventConsumer}. */
export interface KafkaEventConsumerOptions {
  /** The cluster and client settings (brokers, client id, timeouts, retries, log creator). */
  client: KafkaConfig;
  topic: string;
  /** The consumer group, exactly (without Nest's `-server` suffix). */
  group: string;
  handler: EventHandler;
  logger: BusLogger;
}

/**
 * One consumer group on the events topic through `@nestjs/microservices`' Kafka transport: a
 * `ServerKafka` whose one event handler (on the topic) is `handler`, so each subscription feeds
 * only its own handler, whatever else Nest would register on a connected microservice.
 *
 * At least once: `ServerKafka` (11.2.6) runs each record through kafkajs' `eachMessage`, which
 * awaits the deserializer and then the event handler's promise; kafkajs (autoCommit) resolves a
 * record's offset only once `eachMessage` resolved, and commits only resolved offsets. A handler
 * that rejects fails `eachMessage`: kafkajs commits what came before, fetches again from the
 * failed record, and restarts the consumer if the retries run out. So a record is committed
 * only after its handler resolved, in partition order (one partition at a time), and a process
 * death before that means it comes again. A record that is no event is logged and committed.
 */
export class KafkaEventConsumer extends ServerKafka {
  /** Resolves when the group has first joined. */
  readonly joined: Promise<void>;
  private markJoined!: () => void;
  private current: HealthState;
  private closing?: Promise<void>;

  constructor(private readonly settings: KafkaEventConsumerOptions) {
    super({
      client: settings.client,
      postfixId: '',
      consumer: { groupId: settings.group, allowAutoTopicCreation: false, sessionTimeout: 15_000, heartbeatInterval: 3_000 },
      // A new group starts at the earliest retained record (an existing one at its committed offset).
      subscribe: { fromBeginning: true },
      run: { autoCommit: true, partitionsConsumedConcurrently: 1 },
      deserializer: new EventRecordDeserializer(),
    });
    this.parser = new RawRecordParser();
    this.joined = new Promise<void>((resolve) => (this.markJoined = resolve));
    this.current = { state: 'connecting', since: new Date().toISOString(), detail: this.where() };
    this.addHandler(settings.topic, (record: EventRecord, context: KafkaContext) => this.take(record, context), true);
  }

  /** Connects, subscribes and starts consuming; resolves once running (see {@link joined}). @throws when the cluster cannot be reached. */
  open(): Promise<void> {
    return new Promise<void>((resolve, reject) => void this.listen((err?: unknown) => (err ? reject(err) : resolve())));
  }

  health(): HealthState {
    return this.current;
  }

  /** Leaves the group once the record in hand is taken (its offset committed with the others); idempotent. */
  override close(): Promise<void> {
    this.closing ??= super.close().finally(() => this.set('down', `closed (${this.where()})`));
    return this.closing;
  }

  protected override registerConsumerEventListeners(): void {
    super.registerConsumerEventListeners();
    const consumer = this.consumer!;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.set('up', this.where());
      this.markJoined();
    });
    consumer.on(consumer.events.REBALANCING, () => this.set('connecting', `rebalancing (${this.where()})`));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const why = `${payload.error.message} (${this.where()})`;
      this.settings.logger.warn(`consumer group ${this.settings.group} crashed: ${why}${payload.restart ? '; restarting' : ''}`);
      this.set(payload.restart ? 'connecting' : 'down', payload.restart ? `restarting after: ${why}` : why);
    });
  }

  private async take(record: EventRecord, context: KafkaContext): Promise<void> {
    if (!record.event) {
      const where = `${context.getTopic()}[${context.getPartition()}] offset ${context.getMessage().offset}`;
      this.settings.logger.warn(`consumer group ${this.settings.group} skipped the record at ${where}: ${record.error}`);
      return;
    }
    try {
      await this.settings.handler(record.event);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.settings.logger.warn(`consumer group ${this.settings.group} did not take event ${record.event.id} (${message}); it comes again`);
      throw new EventNotTakenError(message, { cause: e });
    }
  }

  private set(state: HealthState['state'], detail: string): void {
    if (this.closing && state !== 'down') return;
    this.current = { state, since: state === this.current.state ? this.current.since : new Date().toISOString(), detail };
  }

  private where(): string {
    return `group ${this.settings.group}, topic ${this.settings.topic}`;
  }
}
