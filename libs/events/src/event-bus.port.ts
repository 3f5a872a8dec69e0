import type { RegistryEvent } from '@lading/contracts';

/** One registry event on its way to the bus: the envelope and the facts the bus routes it by. */
export interface BusEvent {
  /** The envelope's id; consumers drop duplicates by it (delivery is at least once). */
  readonly id: string;
  /** The repository: the Kafka record key, and the unit of ordering. */
  readonly repository: string;
  readonly envelopeVersion: number;
  /** The W3C traceparent of the request that caused the event, when it had one. */
  readonly traceparent: string | null;
  readonly event: RegistryEvent;
  /**
   * The envelope as JSON in the reference registry's field order (`encodeRegistryEvent`), when the
   * caller has it already (the relay: the outbox keeps that text); a bus that sends text uses it
   * as it is instead of encoding `event`.
   */
  readonly encoded?: string;
}

/** Where a bus or a subscription stands, as readiness reports it. */
export interface HealthState {
  readonly state: 'connecting' | 'up' | 'down';
  /** When the state last changed (ISO 8601, this process's clock). */
  readonly since: string;
  /** Why it is not up (the last error), or where it points (the brokers, the topic, the group). */
  readonly detail?: string;
}

/** Whether a bus can take events now: `connecting` until the first contact, then `up` or `down` by the last contact. */
export interface BusHealth extends HealthState {
  readonly kind: 'kafka' | 'in-process';
}

/**
 * The relay's side of the event bus. Adapters: Kafka (the topic `notifications.kafka.topic`,
 * key = repository) and an in-process bus (embedded mode). Either way the outbox stays the
 * durable copy: the relay marks events sent only once `publish` resolved.
 */
export interface EventPublisher {
  /**
   * Makes the bus usable (connects, creates the topic when missing); resolves at once when it
   * is. Safe to call again after a failure.
   * @throws when the bus cannot be reached.
   */
  connect(): Promise<void>;
  /**
   * Publishes `events` in the order given, which keeps each repository's order. Resolves only
   * once the bus holds all of them durably (Kafka: acknowledged by every in-sync replica); rejects
   * when it may not hold some, which the caller treats as none (it publishes them again: at least
   * once). At most `parallelPublishes` calls at a time; calls that overlap have no order between
   * them, so they must not share a repository.
   */
  publish(events: readonly BusEvent[]): Promise<void>;
  /** How many `publish` calls may overlap; 1 when absent. */
  readonly parallelPublishes?: number;
  health(): BusHealth;
  /** Disconnects; the bus is unusable afterwards. */
  close(): Promise<void>;
}

/** An event as a subscriber receives it. */
export type DeliveredEvent = BusEvent;

/** Takes one event; resolves once the subscriber has it (recorded a delivery, say). */
export type EventHandler = (event: DeliveredEvent) => Promise<void>;

/** A running subscription. */
export interface EventSubscription {
  /**
   * `up` while events reach the handler; `connecting` while they cannot for a while (Kafka: the
   * group rebalances, or the consumer restarts after a failure); `down` once closed, or stopped on
   * a failure it does not restart after (the detail says which).
   */
  health(): HealthState;
  /** Stops delivery; resolves once no handler runs. */
  close(): Promise<void>;
}

/**
 * The consuming side (for webhook delivery and tests). A subscription of `group` receives every
 * event published after `subscribe` resolved, each repository's in order, at least once: an event
 * whose handler rejected, or whose process died before the handler resolved, comes again.
 * - Kafka: a consumer group per `group` (exactly that id), through `@nestjs/microservices`' Kafka
 *   transport, from its committed position; groups are independent. A record that is no event of
 *   ours (not an envelope, no uuid id…) is logged and skipped: it never reaches the handler.
 * - In process: every subscription takes each published batch in turn, and `publish` resolves
 *   once all have; a handler that rejects makes the relay publish the batch again, to every
 *   subscription. So a handler should only take the event (record it) and do slow work (an
 *   HTTP delivery) elsewhere.
 */
export interface EventSubscriber {
  /** @throws when the bus cannot be reached (Kafka: or the group did not join within a minute). */
  subscribe(group: string, handler: EventHandler): Promise<EventSubscription>;
}

/** A bus with both sides. */
export interface EventBus extends EventPublisher, EventSubscriber {}
