import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { SpanKind } from '@opentelemetry/api';
import { continuing, OciAttributes, traceparentOf, withSpan } from '@lading/contracts';
import type { BusEvent, EventBus, EventSubscription, HealthState } from '@lading/events';
import { MetadataDb } from '@lading/metadata-db';
import { EVENT_BUS, HealthChecks } from '@lading/nest-common';
import { NOTIFICATIONS_OPTIONS, type NotificationsOptions } from '../notifications.config';
import { WebhookSender } from './webhook.sender';
import { WebhookDispatcher, type DeliverableEvent } from './webhook.service';

/** The longest wait between two attempts to subscribe an endpoint's consumer. */
const MAX_RESUBSCRIBE_MS = 30_000;

/** The consumer group (Kafka) of an endpoint: each endpoint reads the stream at its own pace. */
export function webhookGroup(endpoint: string): string {
  return `lading-webhooks-${endpoint}`;
}

/**
 * Webhook delivery as a consumer of the event stream, like any user's consumer: one subscription
 * per enabled endpoint (on Kafka a consumer group `webhookGroup(name)` through
 * `@nestjs/microservices`' Kafka transport, embedded the in-process bus) takes each event into
 * that endpoint's delivery rows, and the dispatcher delivers them. An event counts as consumed
 * (its offset committed) only once its row is written, so a failed write or a crash means it
 * comes again; the rows are keyed by event id, so it is queued once.
 *
 * Subscribed in `onModuleInit`, before the relay starts publishing at bootstrap (the in-process
 * bus hands an event only to the subscriptions it has then). A consumer that cannot subscribe
 * (Kafka unreachable at start) does not stop the process: the relay still fills the outbox's
 * backlog and the dispatcher still delivers what is queued; it tries again in the background,
 * waiting twice as long each time (up to 30 s), and readiness reports it down meanwhile. On
 * shutdown, after the relay stopped: the subscriptions close (each takes the record in hand
 * first), then the dispatcher stops. Readiness reports each endpoint's consumer and delivery state.
 */
@Injectable()
export class WebhookConsumer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private readonly subscriptions = new Map<string, EventSubscription>();
  /** Endpoints whose consumer is not subscribed yet: why, and the timer of the next attempt. */
  private readonly pending = new Map<string, { state: HealthState; retry?: NodeJS.Timeout }>();
  private stopped = false;

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(WebhookDispatcher) private readonly dispatcher: WebhookDispatcher,
    @Inject(WebhookSender) private readonly sender: WebhookSender,
    @Inject(HealthChecks) private readonly health: HealthChecks,
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(NOTIFICATIONS_OPTIONS) private readonly options: NotificationsOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    const enabled = this.dispatcher.endpoints.filter((e) => !e.disabled).map((e) => e.name);
    if (enabled.length === 0) return;
    await Promise.all(enabled.map((name) => this.subscribe(name, 0)));
    this.dispatcher.start();
    this.logger.log(`delivering to ${enabled.join(', ')}`);
    this.health.addReadiness('webhooks', async () => {
      const states = await this.db.read.webhooks.endpointStates(enabled);
      const endpoints = states.map((s) => ({ ...s, consumer: this.subscriptions.get(s.name)?.health() ?? this.pending.get(s.name)?.state }));
      const stopped = endpoints.filter((e) => !e.consumer || e.consumer.state === 'down');
      return { ok: !this.options.readinessFollowsBus || stopped.length === 0, report: { endpoints } };
    });
  }

  /**
   * Queues one event for endpoint `name` in a `webhook.accept` span continuing the event's trace
   * (under Kafka's `process` span when the instrumentation made one), whose context the delivery
   * row keeps for the POST.
   */
  private accept(name: string, e: BusEvent): Promise<void> {
    const attributes = { 'lading.webhook.endpoint': name, 'messaging.message.id': e.id, [OciAttributes.repository]: e.repository };
    return withSpan('webhook.accept', { kind: SpanKind.CONSUMER, attributes, parent: continuing(e.traceparent) }, () =>
      this.dispatcher.acceptFor(name, [e.event as unknown as DeliverableEvent], traceparentOf() ?? e.traceparent),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    for (const { retry } of this.pending.values()) clearTimeout(retry);
    this.pending.clear();
    await this.closeSubscriptions();
    await this.dispatcher.stop();
    await this.sender.close();
  }

  /** Subscribes `name`'s consumer; on failure, records why and tries again later (attempt `attempt + 1`). */
  private async subscribe(name: string, attempt: number): Promise<void> {
    try {
      const subscription = await this.bus.subscribe(webhookGroup(name), (e) => this.accept(name, e));
      if (this.stopped) {
        await subscription.close();
        return;
      }
      this.pending.delete(name);
      this.subscriptions.set(name, subscription);
      if (attempt > 0) this.logger.log(`the consumer of ${name} subscribed (attempt ${attempt + 1})`);
    } catch (e) {
      if (this.stopped) return;
      const waitMs = Math.min(MAX_RESUBSCRIBE_MS, (this.options.resubscribeAfterMs ?? 1_000) * 2 ** Math.min(attempt, 16));
      const message = (e as Error).message;
      const since = this.pending.get(name)?.state.since ?? new Date().toISOString();
      if (attempt === 0 || waitMs === MAX_RESUBSCRIBE_MS) this.logger.warn(`the consumer of ${name} cannot subscribe: ${message}; trying again in ${waitMs} ms`);
      const retry = setTimeout(() => void this.subscribe(name, attempt + 1), waitMs);
      retry.unref();
      this.pending.set(name, { state: { state: 'down', since, detail: message }, retry });
    }
  }

  private async closeSubscriptions(): Promise<void> {
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    await Promise.allSettled(subscriptions.map((s) => s.close()));
  }
}
