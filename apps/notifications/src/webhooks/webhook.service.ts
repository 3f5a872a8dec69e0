import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { traceIdOf, withSpansEach } from '@lading/contracts';
import type { ClaimedDelivery, MetadataDb } from '@lading/metadata-db';
import { oncePerScrape, SampledGauge, SECONDS_BUCKETS } from '@lading/nest-common';
import { Counter, Histogram } from 'prom-client';
import { retryDelayMs } from './webhook-backoff';
import { CLOUDEVENTS_BATCH_MEDIA_TYPE, EVENTS_MEDIA_TYPE, type WebhookAttemptResult, type WebhookSender } from './webhook.sender';

// The reference registry's notification metrics (`registry_notifications_*`, per endpoint), and ours.
const endpointLabel = ['endpoint'] as const;
const webhookMetrics = {
  events: new Counter({
    name: 'registry_notifications_events_total',
    help: 'Events per endpoint: queued for it (type="Events"), delivered ("Successes"), in a failed POST ("Failures"), by action.',
    labelNames: ['type', 'action', 'endpoint'] as const,
  }),
  status: new Counter({
    name: 'registry_notifications_status_total',
    help: 'Webhook POSTs by response status code ("error": no response), per endpoint.',
    labelNames: ['code', 'endpoint'] as const,
  }),
  delivery: new Counter({
    name: 'registry_notifications_delivery_total',
    help: 'Events by final outcome per endpoint: delivered (maybe after retries) or lost (a dead letter: maxattempts POSTs failed).',
    labelNames: ['endpoint', 'delivery_type'] as const,
  }),
  errors: new Counter({ name: 'registry_notifications_errors_total', help: 'Webhook POSTs that failed (to be retried), per endpoint.', labelNames: endpointLabel }),
  latency: new Histogram({
    name: 'registry_notifications_http_latency_seconds',
    help: 'Time of one webhook POST, per endpoint.',
    labelNames: endpointLabel,
    buckets: SECONDS_BUCKETS,
  }),
  pending: new SampledGauge({ name: 'registry_notifications_pending', help: 'Events waiting for delivery, per endpoint.', labelNames: endpointLabel }),
  dead: new SampledGauge({
    name: 'lading_webhook_dead_letters',
    help: 'Dead letters (events that had maxattempts POSTs) kept for redelivery, per endpoint.',
    labelNames: endpointLabel,
  }),
  oldest: new SampledGauge({
    name: 'lading_webhook_oldest_pending_seconds',
    help: 'How long the oldest pending event of each endpoint has waited (0 when none does): the delivery lag.',
    labelNames: endpointLabel,
  }),
};

/** Counts `events` of one endpoint by action, under `type`. */
function countEvents(type: string, endpoint: string, events: readonly { action: string }[]): void {
  const byAction = new Map<string, number>();
  for (const e of events) byAction.set(e.action, (byAction.get(e.action) ?? 0) + 1);
  for (const [action, n] of byAction) webhookMetrics.events.inc({ type, action, endpoint }, n);
}

/** One webhook endpoint, as configured (`notifications.endpoints[]`, the reference registry's keys plus Lading's). */
export interface WebhookEndpoint {
  name: string;
  disabled: boolean;
  url: string;
  headers: Readonly<Record<string, readonly string[]>>;
  /** Per POST, ms. */
  timeout: number;
  /** Consecutive failed POSTs after which the endpoint backs off for `backoff`. */
  threshold: number;
  /** ms: the endpoint's pause after `threshold` failures, and the first retry delay of a failed event. */
  backoff: number;
  /** ms: the longest wait between retries of one event (Lading; retries double from `backoff`). */
  maxbackoff: number;
  /** POSTs an event gets before it is a dead letter (Lading). */
  maxattempts: number;
  ignoredmediatypes: readonly string[];
  ignore: { mediatypes: readonly string[]; actions: readonly string[] };
  /** HMAC-SHA256 signing secret (Lading). */
  secret?: string;
  /** Body format (Lading): the reference registry's envelope, or CloudEvents 1.0 JSON batch. */
  format: 'distribution' | 'cloudevents';
}

/** An event as the bus hands it over: the envelope, with the fields the dispatcher filters on. */
export interface DeliverableEvent {
  id: string;
  action: string;
  timestamp?: string;
  target?: { mediaType?: string; repository?: string };
  [key: string]: unknown;
}

/** Options of {@link WebhookDispatcher}. */
export interface WebhookDispatcherOptions {
  /** Events per POST. */
  batchSize?: number;
  /** How often an idle endpoint looks for due events, ms. */
  pollMs?: number;
  /** Delivered events and dead letters are deleted this long after their last attempt, ms (default 7 days). */
  retentionMs?: number;
  /** `source` of CloudEvents (a URI naming this registry). */
  cloudEventsSource?: string;
  now?: () => number;
}

/**
 * Runs one POST in a `webhook.deliver` span in each trace its events come from: the first trace's
 * span is active while it runs (the HTTP client's span, and the `traceparent` the endpoint gets,
 * are its children), the others link to it. Each records the answer's status.
 */
function deliverySpans(endpoint: string, claimed: readonly ClaimedDelivery[], send: () => Promise<WebhookAttemptResult>): Promise<WebhookAttemptResult> {
  const traces = new Map<string, string>();
  for (const c of claimed) {
    const id = traceIdOf(c.traceparent);
    if (id && !traces.has(id)) traces.set(id, c.traceparent!);
  }
  const attributes = { 'lading.webhook.endpoint': endpoint, 'messaging.batch.message_count': claimed.length };
  return withSpansEach('webhook.deliver', SpanKind.INTERNAL, [...traces.values()], () => ({ attributes }), async (_, spans) => {
    const [first, ...others] = spans;
    for (const s of others) s?.addLink({ context: first!.spanContext() });
    const result = await send();
    for (const s of spans) {
      if (result.status !== null) s?.setAttribute('http.response.status_code', result.status);
      if (!result.ok) s?.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? `HTTP ${result.status}` });
    }
    return result;
  });
}

/**
 * Delivers registry events to the configured webhook endpoints. `accept` queues each event for
 * every endpoint that wants it (its own cursor: a row per endpoint and event, so one slow or dead
 * endpoint never delays another); each endpoint has its own loop that claims due rows, POSTs
 * them as one body, and records the outcome: delivered; due again after a doubling, jittered
 * delay; a dead letter after `maxattempts`; the endpoint backed off after `threshold`
 * consecutive failures. Any number of replicas may run it: claims expire by the database's clock.
 */
export class WebhookDispatcher {
  private readonly owner = randomUUID();
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private readonly wakers = new Map<string, () => void>();
  private running = false;
  private loops: Promise<void>[] = [];
  private pruner: NodeJS.Timeout | undefined;
  private readonly removeGauges: Array<() => void> = [];

  constructor(
    private readonly db: MetadataDb,
    readonly endpoints: readonly WebhookEndpoint[],
    private readonly sender: WebhookSender,
    private readonly options: WebhookDispatcherOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.pollMs = options.pollMs ?? 250;
    this.now = options.now ?? Date.now;
  }

  /** Queues `events` for every enabled endpoint whose filters let them through; durable when it resolves. */
  async accept(events: readonly DeliverableEvent[]): Promise<void> {
    for (const endpoint of this.endpoints) await this.acceptFor(endpoint.name, events);
  }

  /**
   * Queues `events` for the endpoint named `name` (its own subscription's intake), if it wants
   * them, with the `traceparent` their POST continues.
   */
  async acceptFor(name: string, events: readonly DeliverableEvent[], traceparent: string | null = null): Promise<void> {
    const endpoint = this.endpoints.find((e) => e.name === name && !e.disabled);
    if (!endpoint) return;
    const wanted = events
      .filter((e) => wants(endpoint, e))
      .map((e) => ({ id: e.id, repository: e.target?.repository ?? '', action: e.action, payload: e, traceparent }));
    await this.db.read.webhooks.enqueue(endpoint.name, wanted);
    countEvents('Events', endpoint.name, wanted);
    if (wanted.length > 0) this.wakers.get(endpoint.name)?.();
  }

  /** One round for `endpoint`: claims a batch of due events, POSTs it, records the outcome. How many it sent. */
  async deliverOnce(endpoint: WebhookEndpoint): Promise<number> {
    const webhooks = this.db.read.webhooks;
    const claimed = await webhooks.claimDue(endpoint.name, this.owner, this.batchSize, endpoint.timeout + 30_000);
    if (claimed.length === 0) return 0;
    const payloads = claimed.map((c) => c.payload as DeliverableEvent);
    const [body, contentType] = this.bodyOf(endpoint, payloads);
    const target = { url: endpoint.url, headers: endpoint.headers, timeoutMs: endpoint.timeout, secret: endpoint.secret };
    const result = await deliverySpans(endpoint.name, claimed, () => this.sender.send(target, body, contentType, this.now()));
    const attempts = Math.max(...claimed.map((c) => c.attempts)) + 1;
    const endpointLabels = { endpoint: endpoint.name };
    webhookMetrics.latency.observe(endpointLabels, result.latencyMs / 1000);
    webhookMetrics.status.inc({ ...endpointLabels, code: result.status === null ? 'error' : String(result.status) });
    if (!result.ok) webhookMetrics.errors.inc(endpointLabels);
    countEvents(result.ok ? 'Successes' : 'Failures', endpoint.name, payloads);
    await webhooks.recordAttempt(
      endpoint.name,
      this.owner,
      claimed.map((c) => c.eventId),
      { status: result.status, latencyMs: result.latencyMs, error: result.error, snippet: result.snippet },
      result.ok
        ? { delivered: true }
        : {
            delivered: false,
            retryAfterMs: retryDelayMs(attempts, endpoint.backoff, endpoint.maxbackoff),
            maxAttempts: endpoint.maxattempts,
            threshold: endpoint.threshold,
            endpointBackoffMs: endpoint.backoff,
          },
    );
    // Final outcomes: the store makes a delivery dead once it has had maxattempts POSTs.
    const final = result.ok ? claimed.length : claimed.filter((c) => c.attempts + 1 >= endpoint.maxattempts).length;
    if (final > 0) webhookMetrics.delivery.inc({ ...endpointLabels, delivery_type: result.ok ? 'delivered' : 'lost' }, final);
    return claimed.length;
  }

  /** Starts one delivery loop per enabled endpoint. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.endpoints.filter((e) => !e.disabled).map((e) => this.loop(e));
    const retention = this.options.retentionMs ?? 7 * 24 * 3_600_000;
    this.pruner = setInterval(() => void this.db.read.webhooks.prune(retention).catch(() => undefined), Math.min(10 * 60_000, Math.max(10_000, retention / 10)));
    this.pruner.unref();
    // One state query serves the three gauges of a scrape.
    const names = this.endpoints.map((e) => e.name);
    const read = oncePerScrape(() => this.db.read.webhooks.endpointStates(names));
    this.removeGauges.push(
      webhookMetrics.pending.add(async (set) => (await read()).forEach((e) => set({ endpoint: e.name }, e.pending))),
      webhookMetrics.dead.add(async (set) => (await read()).forEach((e) => set({ endpoint: e.name }, e.dead))),
      webhookMetrics.oldest.add(async (set) => (await read()).forEach((e) => set({ endpoint: e.name }, e.oldestPendingSeconds ?? 0))),
    );
  }

  /** Stops the loops after their current round. */
  async stop(): Promise<void> {
    this.running = false;
    for (const remove of this.removeGauges.splice(0)) remove();
    clearInterval(this.pruner);
    for (const wake of this.wakers.values()) wake();
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(endpoint: WebhookEndpoint): Promise<void> {
    while (this.running) {
      let sent = 0;
      try {
        sent = await this.deliverOnce(endpoint);
      } catch {
        // The database is away: try again after a pause (claims lapse, nothing is lost).
      }
      if (sent === 0 && this.running) {
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, this.pollMs);
          this.wakers.set(endpoint.name, () => {
            clearTimeout(timer);
            wake();
          });
        });
      }
    }
  }

  private bodyOf(endpoint: WebhookEndpoint, events: DeliverableEvent[]): [Buffer, string] {
    if (endpoint.format === 'cloudevents') {
      const source = this.options.cloudEventsSource ?? 'urn:lading:registry';
      const batch = events.map((e) => ({
        specversion: '1.0',
        id: e.id,
        source,
        type: `io.lading.registry.${e.action}`,
        subject: e.target?.repository,
        time: e.timestamp,
        datacontenttype: 'application/json',
        data: e,
      }));
      return [Buffer.from(JSON.stringify(batch)), CLOUDEVENTS_BATCH_MEDIA_TYPE];
    }
    return [Buffer.from(JSON.stringify({ events })), EVENTS_MEDIA_TYPE];
  }
}

/** Whether `endpoint` wants `event`: not an ignored action or media type. */
function wants(endpoint: WebhookEndpoint, event: DeliverableEvent): boolean {
  const mediaType = event.target?.mediaType;
  if (endpoint.ignore.actions.includes(event.action)) return false;
  if (mediaType && (endpoint.ignoredmediatypes.includes(mediaType) || endpoint.ignore.mediatypes.includes(mediaType))) return false;
  return true;
}
