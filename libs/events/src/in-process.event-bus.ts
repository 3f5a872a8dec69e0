import type { BusEvent, BusHealth, EventBus, EventHandler, EventSubscription } from './event-bus.port';

interface Subscription {
  group: string;
  handler: EventHandler;
  /** The batch it is taking now, if any. */
  running?: Promise<void>;
  closed: boolean;
}

/**
 * The bus of the embedded registry: events go from the relay straight to this process's
 * subscribers. Nothing is kept here — the outbox is the durable copy, and an event is marked sent
 * only once every subscription took it, so a crash or a rejecting handler means it is published
 * again after restart (at least once). With no subscriber, a publish has nothing to do.
 */
export class InProcessEventBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();
  private readonly started = new Date().toISOString();
  private closed = false;

  async connect(): Promise<void> {
    if (this.closed) throw new Error('the event bus is closed');
  }

  /**
   * Hands the events, in order, to each subscription (subscriptions side by side); resolves when
   * every one took every event.
   * @throws the first handler's error when any rejected (the others still took the batch).
   */
  async publish(events: readonly BusEvent[]): Promise<void> {
    await this.connect();
    const results = await Promise.allSettled([...this.subscriptions].map((s) => this.deliver(s, events)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  health(): BusHealth {
    return { kind: 'in-process', state: this.closed ? 'down' : 'up', since: this.started, detail: `${this.subscriptions.size} subscriptions` };
  }

  async subscribe(group: string, handler: EventHandler): Promise<EventSubscription> {
    const sub: Subscription = { group, handler, closed: false };
    this.subscriptions.add(sub);
    let since = new Date().toISOString();
    return {
      health: () => ({ state: sub.closed ? 'down' : 'up', since, detail: `group ${group}, in process${sub.closed ? ', closed' : ''}` }),
      close: async () => {
        if (!sub.closed) since = new Date().toISOString();
        sub.closed = true;
        this.subscriptions.delete(sub);
        await sub.running;
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.running));
    this.subscriptions.clear();
  }

  private deliver(sub: Subscription, events: readonly BusEvent[]): Promise<void> {
    const run = (async () => {
      for (const event of events) {
        if (sub.closed) return;
        await sub.handler(event);
      }
    })();
    sub.running = run.catch(() => undefined);
    return run;
  }
}
