import { randomUUID } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SpanKind } from '@opentelemetry/api';
import { linksTo, OciAttributes, withSpansEach } from '@lading/contracts';
import type { BusEvent, EventPublisher } from '@lading/events';
import { MetadataDb, type OutboxBacklog, type OutboxEvent } from '@lading/metadata-db';
import { EVENT_BUS, LADING_CONFIG, oncePerScrape, SampledGauge, SECONDS_BUCKETS, type LadingConfig } from '@lading/nest-common';
import { Counter, Histogram } from 'prom-client';

/** The most repositories one claim takes: a batch mixes this many repositories' events. */
export const REPOSITORIES_PER_CLAIM = 64;
/** Sent rows deleted per statement when pruning. */
const PRUNE_BATCH = 5_000;
/** Retries of a failing relay wait from this long, doubling, up to MAX_BACKOFF_MS. */
const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;
/** At most one "still failing" log line per this long. */
const FAILURE_LOG_EVERY_MS = 30_000;
/** How long a stop waits for the batch in flight before leaving its leases to expire. */
const STOP_WAIT_MS = 10_000;

const relayMetrics = {
  relayed: new Counter({ name: 'lading_outbox_relayed_events_total', help: 'Events this process published from the outbox and marked sent.' }),
  duplicates: new Counter({ name: 'lading_outbox_duplicate_events_total', help: 'Events published that another relay had marked sent already (duplicates on the bus).' }),
  failures: new Counter({ name: 'lading_outbox_relay_failures_total', help: 'Relay batches that failed (bus or database down) and were retried.' }),
  publish: new Histogram({
    name: 'lading_events_publish_duration_seconds',
    help: 'Time to publish one relay batch to the event bus (the Kafka produce latency, with bus="kafka").',
    labelNames: ['bus'] as const,
    buckets: SECONDS_BUCKETS,
  }),
  backlog: new SampledGauge({ name: 'lading_outbox_backlog_events', help: 'Events in the outbox not yet sent to the bus (all relays).' }),
  oldest: new SampledGauge({ name: 'lading_outbox_oldest_age_seconds', help: 'Age of the oldest unsent outbox event by the database clock; 0 when none waits.' }),
};

/** What a relay did since it started. */
export interface RelayStats {
  /** This relay's id: the owner of its leases. */
  owner: string;
  /** Events published and then marked sent by this relay. */
  relayed: number;
  batches: number;
  /** Events this relay published that another relay had already marked sent: known duplicates on the bus. */
  duplicates: number;
  /** Leases lost while a batch was in flight (the relay was slower than its lease). */
  leasesLost: number;
  failures: number;
  lastError?: string;
  /** When the relay loop last went round (ISO 8601). */
  heartbeat: string;
}

/**
 * Relays the outbox to the event bus: claims repositories (a lease each, see
 * OutboxStore.claimRepositories), reads their oldest unsent events, publishes them (Kafka:
 * acknowledged by all in-sync replicas) and only then marks them sent, releasing the leases in
 * the same transaction. A crash between publish and mark means they are published again, by
 * this relay after restart or by another once the lease expires: at least once, never lost;
 * consumers drop duplicates by event id.
 *
 * Order: a repository is relayed by one relay at a time (its lease), in seq order, and its next
 * batch is claimed only after the previous one was acknowledged and marked; so with any number of
 * replicas each repository's events reach the bus in order (a resend only repeats events that
 * came before). While the bus is down, nothing is claimed; the backlog waits in the outbox and
 * drains when the bus is back. Sent events are pruned after `notifications.outbox.retention`.
 *
 * Throughput: `notifications.outbox.concurrency` loops per relay each claim, read, publish and
 * mark their own batch, so one batch's database round trips overlap another's publish. The
 * batches in flight hold disjoint repositories (a claim never takes a repository under a live
 * lease, this relay's own included), so this changes no order, and as many of their publishes
 * overlap as the bus allows (Kafka: `notifications.kafka.producers`, one request in flight each).
 */
@Injectable()
export class OutboxRelayService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OutboxRelayService.name);
  private readonly owner = randomUUID();
  private readonly counts = { relayed: 0, batches: 0, duplicates: 0, leasesLost: 0, failures: 0 };
  private lastError?: string;
  private heartbeat = Date.now();
  private loops?: Promise<void>[];
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private woken = false;
  /** The repositories of each batch in flight. */
  private readonly inFlight = new Set<readonly string[]>();
  /** Publishes under way, and those waiting for one of the bus's `parallelPublishes` turns. */
  private publishes = 0;
  private readonly publishQueue: Array<() => void> = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe?: () => void;
  private lastFailureLog = 0;
  private readonly removeGauges: Array<() => void> = [];
  /** Claims of this relay's loops under way, and how many were ever started (to see two overlap). */
  private claiming = 0;
  private claimsStarted = 0;

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(EVENT_BUS) private readonly bus: EventPublisher,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Starts the relay loops, lease renewal and pruning. */
  start(): void {
    if (this.loops) return;
    const { lease, retention } = this.config.notifications.outbox;
    this.unsubscribe = this.db.onOutboxAppended(() => this.kick());
    this.timers.push(setInterval(() => void this.renew(), Math.floor(lease / 3)));
    const pruneEvery = Math.min(10 * 60_000, Math.max(10_000, Math.floor(retention / 10)));
    this.timers.push(setInterval(() => void this.prune(), pruneEvery));
    for (const t of this.timers) t.unref();
    const { concurrency } = this.config.notifications.outbox;
    this.logger.log(`relaying the outbox to the ${this.bus.health().kind} bus (relay ${this.owner}, ${concurrency} batches in flight)`);
    this.loops = Array.from({ length: concurrency }, (_, i) => this.run(i === 0));
    // One backlog query serves both gauges of a scrape.
    const read = oncePerScrape(() => this.backlog());
    this.removeGauges.push(
      relayMetrics.backlog.add(async (set) => set({}, (await read()).unsent)),
      relayMetrics.oldest.add(async (set) => set({}, ((await read()).oldestAgeMs ?? 0) / 1000)),
    );
  }

  /** Stops after the batches in flight (waiting at most 10 s) and gives up this relay's leases. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const remove of this.removeGauges.splice(0)) remove();
    this.kick();
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.unsubscribe?.();
    const stopped = await Promise.race([Promise.all(this.loops ?? []).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), STOP_WAIT_MS).unref())]);
    if (stopped !== false) await this.db.read.outbox.releaseLeases(this.owner).catch(() => undefined);
  }

  /**
   * One batch: claim, read, publish, mark. Returns how many events it relayed (0: nothing to do).
   * Several may run at once (the loops); their publishes take turns.
   * @throws when the bus or the database failed; the claimed repositories are released then.
   */
  async relayOnce(): Promise<number> {
    const { batchsize, lease } = this.config.notifications.outbox;
    const outbox = this.db.read.outbox;
    // The repositories of the oldest `batchsize` unclaimed events: about what one batch sends.
    const claim = () => outbox.claimRepositories({ owner: this.owner, leaseMs: lease, repositories: REPOSITORIES_PER_CLAIM, scan: batchsize });
    const started = this.claimsStarted++;
    const overlappedAtStart = this.claiming++ > 0;
    let claimed: string[];
    try {
      claimed = await claim();
      // Loops woken together claim together: both pick the same head of the outbox, and the one
      // whose leases lost the race gets nothing although more is waiting behind them. Once more,
      // now that the other's leases are committed, instead of idling until the next kick or poll.
      if (claimed.length === 0 && (overlappedAtStart || this.claimsStarted - 1 !== started)) claimed = await claim();
    } finally {
      this.claiming--;
    }
    if (claimed.length === 0) return 0;
    let repositories = claimed;
    this.inFlight.add(repositories);
    try {
      const events = await outbox.unsentOf(repositories, batchsize);
      // Repositories this batch has no room for go back at once, for another relay to take.
      const used = new Set(events.map((e) => e.repository));
      const unused = repositories.filter((r) => !used.has(r));
      if (unused.length > 0) {
        await outbox.releaseLeases(this.owner, unused);
        this.inFlight.delete(repositories);
        repositories = repositories.filter((r) => used.has(r));
        this.inFlight.add(repositories);
      }
      await publishSpans(events, (bus) => this.publish(bus));
      const marked = await outbox.markSent(this.owner, events.map((e) => e.seq), repositories);
      this.counts.relayed += marked;
      relayMetrics.relayed.inc(marked);
      this.counts.batches++;
      if (marked < events.length) {
        this.counts.duplicates += events.length - marked;
        relayMetrics.duplicates.inc(events.length - marked);
        this.logger.warn(`${events.length - marked} events were sent by another relay too (a lease taken over): duplicates on the bus, dropped by id`);
      }
      return events.length;
    } catch (e) {
      await outbox.releaseLeases(this.owner, claimed).catch(() => undefined);
      throw e;
    } finally {
      this.inFlight.delete(repositories);
    }
  }

  /** What this relay did, for the health endpoints. */
  stats(): RelayStats {
    return { owner: this.owner, ...this.counts, lastError: this.lastError, heartbeat: new Date(this.heartbeat).toISOString() };
  }

  /** Milliseconds since the loop last went round. */
  heartbeatAgeMs(): number {
    return Date.now() - this.heartbeat;
  }

  /** What waits in the outbox (all relays'), by the database's clock. */
  backlog(): Promise<OutboxBacklog> {
    return this.db.read.outbox.backlog();
  }

  /** Publishes once fewer than the bus's `parallelPublishes` publishes are under way. */
  private async publish(events: readonly BusEvent[]): Promise<void> {
    while (this.publishes >= (this.bus.parallelPublishes ?? 1)) await new Promise<void>((turn) => this.publishQueue.push(turn));
    this.publishes++;
    const timer = relayMetrics.publish.startTimer({ bus: this.bus.health().kind });
    try {
      await this.bus.publish(events);
      timer();
    } finally {
      this.publishes--;
      this.publishQueue.shift()?.();
    }
  }

  /**
   * One loop. Only the first polls while the outbox is (nearly) empty; the others wait until a
   * full batch says there is a backlog (or an append in this process, or a stop, kicks them), so an
   * idle relay costs one claim per poll interval, not one per loop.
   */
  private async run(first: boolean): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      this.heartbeat = Date.now();
      try {
        await this.bus.connect();
        const sent = await this.relayOnce();
        if (backoff > 0) this.logger.log('relaying again');
        backoff = 0;
        this.lastError = undefined;
        const { batchsize, pollinterval } = this.config.notifications.outbox;
        if (sent >= batchsize) this.kick();
        else await this.idle(first ? pollinterval : undefined);
      } catch (e) {
        this.counts.failures++;
        relayMetrics.failures.inc();
        this.lastError = (e as Error).message;
        backoff = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, backoff * 2));
        this.logFailure(e as Error, backoff);
        await this.idle(backoff);
      }
    }
  }

  /** Waits `ms` (without it, until kicked), or less when kicked: an append in this process, a full batch, a stop. */
  private idle(ms?: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Ends the current idle waits, or the next one if every loop is busy. */
  private kick(): void {
    if (this.wakers.size === 0) this.woken = true;
    for (const wake of [...this.wakers]) wake();
  }

  private async renew(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const batches = [...this.inFlight];
    try {
      const held = new Set(await this.db.read.outbox.renewLeases(this.owner, this.config.notifications.outbox.lease));
      // A batch that finished meanwhile gave its leases up: only those still in flight count.
      const lost = batches.filter((b) => this.inFlight.has(b)).flatMap((b) => b.filter((r) => !held.has(r)));
      if (lost.length > 0) {
        this.counts.leasesLost += lost.length;
        this.logger.warn(`lost the lease on ${lost.length} repositories mid-batch (${lost.slice(0, 3).join(', ')}…): another relay may resend their events`);
      }
    } catch (e) {
      // The lease outlasts two missed renewals; a third means another relay may take over.
      this.logger.warn(`renewing leases failed: ${(e as Error).message}`);
    }
  }

  private async prune(): Promise<void> {
    try {
      let total = 0;
      for (;;) {
        const n = await this.db.read.outbox.pruneSent(this.config.notifications.outbox.retention, PRUNE_BATCH);
        total += n;
        if (n < PRUNE_BATCH || this.stopping) break;
      }
      if (total > 0) this.logger.log(`pruned ${total} sent events older than the retention`);
    } catch (e) {
      this.logger.warn(`pruning the outbox failed: ${(e as Error).message}`);
    }
  }

  private logFailure(e: Error, retryMs: number): void {
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) return;
    this.lastFailureLog = now;
    void this.backlog().then(
      (b) => this.logger.warn(`relay failed: ${e.message}; ${b.unsent} events wait in the outbox (oldest ${b.oldestAgeMs ?? 0} ms); retrying every ${retryMs} ms`),
      () => this.logger.warn(`relay failed: ${e.message}; retrying every ${retryMs} ms`),
    );
  }
}

/**
 * Publishes outbox rows continuing each row's trace: one `publish` span per row, a child of (and
 * linked to) the request that made the change, whose context goes on with the event instead
 * (the Kafka record's headers, the in-process bus).
 */
function publishSpans(events: readonly OutboxEvent[], publish: (events: BusEvent[]) => Promise<void>): Promise<void> {
  return withSpansEach(
    'publish',
    SpanKind.PRODUCER,
    events.map((e) => e.traceparent),
    (i) => ({
      links: linksTo(events[i].traceparent),
      attributes: {
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.message.id': events[i].id,
        [OciAttributes.repository]: events[i].repository,
      },
    }),
    (traceparents) => publish(events.map((e, i) => toBusEvent(e, traceparents[i]))),
  );
}

/**
 * The bus event of an outbox row, carrying `traceparent` on; its envelope is parsed only if the bus
 * reads `event` (the Kafka bus sends `encoded`).
 */
function toBusEvent(e: OutboxEvent, traceparent = e.traceparent): BusEvent {
  return {
    id: e.id,
    repository: e.repository,
    envelopeVersion: e.envelopeVersion,
    traceparent,
    encoded: e.payload,
    get event() {
      return e.event;
    },
  };
}
