import { Logger } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, register } from 'prom-client';

/**
 * What Lading exports to Prometheus lives in prom-client's default registry: one per process, so
 * the embedded process (every app in one) serves one `/metrics`, and a metric is defined once, at
 * module level, by the code it measures. Names follow the reference registry where it has one
 * (`registry_http_*`, `registry_storage_*`, `registry_notifications_*`); ours start `lading_`.
 * No label holds a repository, a digest, a tag or an upload id: every label set is bounded.
 */
export const metricsRegistry = register;

/** Latency buckets in seconds: from a cached manifest (ms) to a large blob (minutes). */
export const SECONDS_BUCKETS = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
]) as number[];

/** Size buckets in bytes, by powers of ten from 100 B to 10 GB. */
export const BYTES_BUCKETS = Object.freeze([1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]) as number[];

/**
 * prom-client's default metrics that are gauges named `_total`, which Prometheus's naming rules
 * (and `promtool check metrics`) keep for counters. Each has a twin without the suffix
 * (`nodejs_active_handles`…), which stays.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Node's process metrics (`process_*`, `nodejs_*`), registered once per process. */
export function collectProcessMetrics(): void {
  if (register.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics();
  for (const name of MISNAMED_DEFAULTS) register.removeSingleMetric(name);
}

/** Sets one sample of a {@link SampledGauge}. */
export type GaugeSetter<L extends string> = (labels: Partial<Record<L, string>>, value: number) => void;

/** Reads the current values into `set`, at scrape time. */
export type GaugeSource<L extends string> = (set: GaugeSetter<L>) => void | Promise<void>;

const logger = new Logger('Metrics');

/**
 * A gauge whose values are read when Prometheus scrapes, from the sources that live app instances
 * add (a queue depth from the database, a pool's connection counts): nothing to keep up to date
 * between scrapes, and an instance that stops removes its source. A source that fails (the
 * database is down) leaves its samples out of that scrape instead of failing the whole scrape.
 */
export class SampledGauge<L extends string = string> {
  private readonly sources = new Set<GaugeSource<L>>();

  constructor(config: { name: string; help: string; labelNames?: readonly L[] }, kind: 'gauge' | 'counter' = 'gauge') {
    const sources = this.sources;
    const Metric = kind === 'gauge' ? Gauge : Counter;
    new Metric<L>({
      ...config,
      async collect() {
        this.reset();
        const write: GaugeSetter<L> =
          this instanceof Gauge
            ? (labels, value) => this.set(labels, value)
            : (labels, value) => this.inc(labels, value);
        for (const source of sources) {
          try {
            await source(write);
          } catch (e) {
            logger.debug(`${config.name}: ${(e as Error).message}`);
          }
        }
      },
    });
  }

  /** Adds a source; the function returned removes it. */
  add(source: GaugeSource<L>): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }
}

/**
 * A counter read at scrape time, as {@link SampledGauge} reads a gauge: for totals the measured
 * code keeps itself (a buffer's counts), which then needs no prom-client. The sources' values are
 * added up (two instances in one process give one total); each must only grow.
 */
export class SampledCounter<L extends string = string> extends SampledGauge<L> {
  constructor(config: { name: string; help: string; labelNames?: readonly L[] }) {
    super(config, 'counter');
  }
}

/**
 * `read`, shared by the gauges of one scrape: the first call starts it, the calls in the same
 * scrape (made one after another, before the next turn of the event loop ends) get the same
 * promise, and the next scrape reads again. For several gauges drawn from one database query.
 */
export function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => (pending ??= read().finally(() => setImmediate(() => (pending = undefined))));
}
