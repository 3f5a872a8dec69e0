import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { RequestScope } from '@lading/contracts';
import { buildRegistryEvent, type RegistryEventInput } from './event.factory';
import type { OutboxEntry } from './stores/outbox.store';
import type { MetadataDb } from './unit-of-work';

/** How a {@link PullEventBuffer} batches. */
export interface PullEventBufferOptions {
  /** False records nothing (no pull events at all). */
  enabled: boolean;
  /** The longest a recorded pull waits before it is written, in milliseconds. */
  flushIntervalMs: number;
  /** Events per INSERT; a full batch is written at once. */
  maxBatch: number;
  /** The most events held in memory; pulls beyond it are dropped (and counted). */
  maxBuffered: number;
}

/** Counters of a {@link PullEventBuffer}, since the process started. */
export interface PullEventStats {
  recorded: number;
  written: number;
  /** Pulls dropped: buffer full, a write that failed with no room to keep its batch, or recorded after close. */
  dropped: number;
  /** Held in memory now: what a crash at this moment would lose. */
  pending: number;
  failedWrites: number;
}

/** At most one warning per this many milliseconds, however many pulls are dropped. */
const WARN_EVERY_MS = 10_000;

/**
 * Pull events, off the pull path. Distribution emits an event for every blob and manifest pull;
 * they outnumber pushes by far, so a pull must never wait for a database write or a broker. A
 * pull is recorded in memory (`record` does no I/O and never throws) and written to the outbox
 * with other pulls in one multi-row INSERT, `flushIntervalMs` after the first of them or at once
 * when `maxBatch` are waiting; from there it is relayed like any event.
 *
 * What can be lost, and only for pulls: a crash (kill -9, OOM) loses the events held in memory —
 * at most `flushIntervalMs` worth of pulls, never more than `maxBuffered`; a graceful stop writes
 * them first (`close`). When the database cannot take them, they wait in memory up to
 * `maxBuffered`, beyond which new pulls are dropped. Every drop is counted in `stats()` and
 * logged (at most once per 10 s, with the totals).
 */
export class PullEventBuffer {
  private pending: OutboxEntry[] = [];
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  private closed = false;
  private lastWriteFailed = false;
  private lastWarn = 0;
  private readonly counts = { recorded: 0, written: 0, dropped: 0, failedWrites: 0 };

  constructor(
    private readonly db: MetadataDb,
    private readonly options: PullEventBufferOptions,
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** Records a pull now (its timestamp is now); written within `flushIntervalMs`. */
  record(scope: RequestScope, input: RegistryEventInput): void {
    if (!this.options.enabled) return;
    if (this.closed || this.pending.length >= this.options.maxBuffered) {
      this.drop(1, this.closed ? 'recorded after shutdown' : `buffer full (${this.options.maxBuffered})`);
      return;
    }
    this.counts.recorded++;
    this.pending.push({ event: buildRegistryEvent(scope, input, this.db.source), traceparent: scope.traceparent, tenant: scope.tenant });
    if (this.pending.length >= this.options.maxBatch) this.startWriting();
    else this.schedule(this.options.flushIntervalMs);
  }

  /** Writes everything recorded so far; resolves when written, or when a write failed (the events wait for the next try). */
  async flush(): Promise<void> {
    this.clearTimer();
    while (this.pending.length > 0) {
      this.startWriting();
      await this.writing;
      if (this.lastWriteFailed) return;
    }
    await this.writing;
  }

  /** Stops recording and writes what is held; what cannot be written is dropped, counted and logged. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.pending.length > 0) {
      this.lastWarn = 0;
      this.drop(this.pending.splice(0).length, 'the database refused them at shutdown');
    }
  }

  /** Counters since start. */
  stats(): PullEventStats {
    return { ...this.counts, pending: this.pending.length };
  }

  private startWriting(): void {
    if (this.writing || this.pending.length === 0) return;
    this.clearTimer();
    const batch = this.pending.splice(0, this.options.maxBatch);
    // Out of the context of the pull that happens to start it (its own, or the one that armed the
    // timer): a batch of many pulls is no part of that one request's trace, so it makes no spans.
    // Each event still carries its own request's traceparent, which the relay continues.
    this.writing = context
      .with(ROOT_CONTEXT, () => this.db.transaction((tx) => tx.outbox.appendMany(batch)))
      .then(
        () => {
          this.counts.written += batch.length;
          this.lastWriteFailed = false;
        },
        (e: unknown) => {
          this.counts.failedWrites++;
          this.lastWriteFailed = true;
          const room = this.options.maxBuffered - this.pending.length;
          const kept = Math.max(0, Math.min(room, batch.length));
          if (kept < batch.length) this.drop(batch.length - kept, `a write failed (${(e as Error).message}) and the buffer is full`);
          this.pending.unshift(...batch.slice(0, kept));
          this.warnAtMost(`writing ${batch.length} pull events failed (${(e as Error).message}); retrying`);
        },
      )
      .finally(() => {
        this.writing = undefined;
        if (this.closed) return;
        // After a failure, the next try waits an interval: no hot loop against a database that is down.
        if (this.pending.length >= this.options.maxBatch && !this.lastWriteFailed) this.startWriting();
        else if (this.pending.length > 0) this.schedule(this.options.flushIntervalMs);
      });
  }

  private schedule(ms: number): void {
    if (this.timer || this.writing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startWriting();
    }, ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drop(n: number, why: string): void {
    this.counts.dropped += n;
    this.warnAtMost(`dropped ${n} pull events: ${why} (${this.counts.dropped} dropped since start, ${this.counts.written} written)`);
  }

  private warnAtMost(message: string): void {
    const now = Date.now();
    if (now - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = now;
    this.warn(message);
  }
}
