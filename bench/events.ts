/**
 * Events (issue 8 §5): the outbox → Kafka relay and webhooks of the split stack, on the test
 * PostgreSQL and Kafka (filesystem storage, or MinIO), beside the reference registry where it
 * has the feature (webhooks). Not a test: numbers, and the issue's targets met or not.
 *
 *   bash scripts/services start postgres kafka minio    # unless they run
 *   eval "$(bash scripts/services env)"
 *   bench/events                                        # full scale, about 6 minutes; BENCH_SCALE=small: about 3
 *
 * Environment:
 *   BENCH_SCALE            `full` (default) or `small`
 *   BENCH_EVENTS_STORAGE   `filesystem` (default) or `s3` (the test MinIO, under a fresh prefix removed at the end)
 *   BENCH_EVENTS_BURST     outbox rows per burst (default 100000; 20000 at small)
 *   BENCH_EVENTS_WORKLOADS some of `burst,pushes,latency,cost` (default: all)
 *   BENCH_EVENTS_RELAY     `KEY=value,…` LADING_* settings for every notifications process (e.g.
 *                          `LADING_NOTIFICATIONS_OUTBOX_CONCURRENCY=1`), to compare relay settings
 *   BENCH_OUT              where to write the markdown (default bench/results/latest-events.md at full scale,
 *                          latest-events-<scale>.md otherwise, which git ignores)
 *   BENCH_NOTE             a sentence for the notes
 *   BENCH_REFERENCE_BIN    the reference registry (default /usr/bin/docker-registry)
 *
 * The report goes to stdout and the file, progress to stderr. Exits 0 unless something broke
 * (a server did not start, an event never arrived); a missed target is a finding.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { sharedKafkaBrokers, uniqueTopic } from '../test/support/kafka';
import { startSplit, type LadingProcess, type SplitStack } from '../test/support/registry-processes';
import { purgeS3Root, s3RegistryEnv } from '../test/support/s3';
import { Arrivals, EVENTS_PER_PUSH, pushLoad, sequentialPushes, startTimedReceiver, type Push } from './event-pushes';
import { withDb } from '../test/support/robustness-stack';
import { deleteTopic, eventOf, insertBurst, markedSent, TopicTap, unsentCount } from './event-tap';
import { cpuSecondsOf, databaseBackends, findProcesses, readCpuSeconds } from './proc-stats';
import { REFERENCE_BIN, ROOT, referenceVersion, startReference, stopAll } from './registries';
import { GiB, percentile } from './stats';

function log(message: string): void {
  console.error(`[bench events] ${message}`);
}

/** How much work each workload does. */
interface EventsScale {
  name: string;
  /** Outbox rows of one burst, over so many repositories (round-robin), and how many times the main burst runs. */
  burst: number;
  burstRepositories: number;
  burstRepeats: number;
  /** The same burst over a few repositories (deep per-repository backlogs). */
  fewRepositories: number;
  /** Concurrent pushers and seconds of the push load. */
  pushClients: number;
  pushSeconds: number;
  /** Sequential pushes for the latency workload. */
  latencyPushes: number;
  /** Pairs of events-off / events-on rounds, and seconds of each round. */
  costPairs: number;
  costSeconds: number;
}

const SCALES: Record<string, EventsScale> = {
  full: {
    name: 'full',
    burst: 100_000,
    burstRepositories: 1_000,
    burstRepeats: 3,
    fewRepositories: 8,
    pushClients: 8,
    pushSeconds: 20,
    latencyPushes: 200,
    costPairs: 3,
    costSeconds: 15,
  },
  small: {
    name: 'small',
    burst: 20_000,
    burstRepositories: 200,
    burstRepeats: 1,
    fewRepositories: 8,
    pushClients: 8,
    pushSeconds: 8,
    latencyPushes: 60,
    costPairs: 2,
    costSeconds: 6,
  },
};

/** The workloads, in the order they run (BENCH_EVENTS_WORKLOADS picks some). */
const WORKLOADS = ['burst', 'pushes', 'latency', 'cost'];

/** Partitions of every topic the benchmark makes (the relay's default). */
const PARTITIONS = 6;
/** Longest wait for events to arrive anywhere before the run fails. */
const ARRIVAL_TIMEOUT_MS = 10 * 60_000;

/** A table row: label and one value per column. */
type Row = [string, ...Array<number | string>];
/** One workload's report section. */
interface Section {
  title: string;
  description: string;
  columns: string[];
  rows: Row[];
}

/**
 * CPU seconds of groups of processes over an interval. A process found at the end and not at the
 * start (a new pooled connection's backend) counts whole; one gone by the end took its CPU with it
 * and counts nothing.
 */
function cpuMeter(groups: Record<string, () => number[]>): () => Record<string, number> {
  const before = Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, new Map(f().map((pid) => [pid, cpuSecondsOf([pid])]))]));
  return () =>
    Object.fromEntries(
      Object.entries(groups).map(([k, f]) => {
        const pids = new Set([...before[k].keys(), ...f()]);
        let sum = 0;
        for (const pid of pids) {
          const now = readCpuSeconds(pid);
          if (!Number.isNaN(now)) sum += now - (before[k].get(pid) ?? 0);
        }
        return [k, sum];
      }),
    );
}

/** The split stack without notifications (each workload starts its own, on its own topic). */
class EventsStack {
  private constructor(
    readonly stack: SplitStack,
    readonly brokers: string[],
    private readonly relayEnv: Record<string, string>,
    private readonly database: string,
  ) {}

  static async start(storage: 'filesystem' | 's3', s3Root: string, relayEnv: Record<string, string>): Promise<EventsStack> {
    const brokers = sharedKafkaBrokers();
    const stack = await startSplit({
      env: {
        LADING_KAFKA_BROKERS: brokers.join(','),
        LADING_NOTIFICATIONS_KAFKA_PARTITIONS: String(PARTITIONS),
        ...(storage === 's3' ? { ...s3RegistryEnv(s3Root), LADING_STORAGE_REDIRECT_DISABLE: 'true' } : {}),
      },
      withWorkers: false,
    });
    return new EventsStack(stack, brokers, relayEnv, new URL(stack.databaseUrl).pathname.slice(1));
  }

  /** Starts `count` notifications processes relaying to `topic`. */
  async relays(topic: string, count = 1, env: Record<string, string> = {}): Promise<LadingProcess[]> {
    const started: LadingProcess[] = [];
    for (let i = 0; i < count; i++) started.push(await this.stack.startExtra('notifications', { LADING_NOTIFICATIONS_KAFKA_TOPIC: topic, ...this.relayEnv, ...env }));
    return started;
  }

  /** Waits until the outbox holds nothing unsent. */
  async drained(ms = ARRIVAL_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while ((await unsentCount(this.stack.databaseUrl)) > 0) {
      if (Date.now() > deadline) throw new Error('the outbox did not drain');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A meter of the relays', the registry's (gateway, blob-upload, manifests), PostgreSQL's and Kafka's CPU. */
  meter(relays: LadingProcess[]): () => Record<string, number> {
    return cpuMeter({
      relay: () => relays.map((r) => r.proc.pid!),
      registry: () => Object.values(this.stack.apps).map((p) => p.proc.pid!),
      postgres: () => databaseBackends(this.database),
      kafka: () => findProcesses('java', (cmd) => cmd.includes('kafka.Kafka')),
    });
  }
}

/**
 * Burst: `n` outbox rows committed at once (one transaction of multi-row inserts, through the
 * store as writers append), relayed by `replicas` notifications processes: from the commit until
 * every one is on the topic (the partitions' high-water marks) and read by a plain consumer; CPU
 * per event of the relays,
 * PostgreSQL (this database's backends) and Kafka (the whole broker).
 */
async function burst(s: EventsStack, n: number, repositories: number, replicas: number): Promise<Record<string, number>> {
  const topic = uniqueTopic('bench-burst');
  const tap = await TopicTap.start(s.brokers, topic, PARTITIONS);
  let relays: LadingProcess[] = [];
  try {
    relays = await s.relays(topic, replicas);
    const repos = Array.from({ length: repositories }, (_, i) => `burst/${topic.slice(-6)}/r${i}`);
    log(`burst: ${n} outbox rows over ${repositories} repositories in one transaction, ${replicas} relay process(es)`);
    const { ids, committedAt } = await insertBurst(s.stack.databaseUrl, n, repos);
    // From the commit on: the writer's own backend (gone with its connection) is not the relay's cost.
    const cpu = s.meter(relays);
    let onTopicAt = 0;
    const deadline = Date.now() + ARRIVAL_TIMEOUT_MS;
    while (onTopicAt === 0) {
      if ((await tap.onTopic()) >= n) onTopicAt = performance.now();
      else if (Date.now() > deadline) throw new Error(`burst: not all ${n} events on the topic in ${ARRIVAL_TIMEOUT_MS / 1000} s`);
      else await new Promise((r) => setTimeout(r, 25));
    }
    const readAt = await tap.waitForCount(n, ARRIVAL_TIMEOUT_MS);
    const used = cpu();
    const marked = await markedSent(s.stack.databaseUrl, ids);
    if (marked !== n) throw new Error(`burst: ${marked} of ${n} rows marked sent`);
    const perEvent = (seconds: number) => (seconds * 1e6) / n;
    return {
      onTopicS: (onTopicAt - committedAt) / 1000,
      onTopicRate: n / ((onTopicAt - committedAt) / 1000),
      readRate: n / ((readAt - committedAt) / 1000),
      duplicates: tap.records.length - new Set(tap.records.map((r) => r.id)).size,
      relayCpu: perEvent(used.relay),
      postgresCpu: perEvent(used.postgres),
      kafkaCpu: perEvent(used.kafka),
    };
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
    await tap.close();
  }
}

const BURST_ROWS: Array<[string, string, number]> = [
  ['commit → all on the topic (s) ↓', 'onTopicS', 2],
  ['events/s, commit → all on the topic ↑', 'onTopicRate', 0],
  ['events/s, commit → all read by the consumer ↑', 'readRate', 0],
  ['duplicate records on the topic', 'duplicates', 0],
  ['relay CPU per event (µs) ↓', 'relayCpu', 1],
  ['PostgreSQL CPU per event (µs) ↓', 'postgresCpu', 1],
  ['Kafka CPU per event (µs) ↓', 'kafkaCpu', 1],
];

/** The median of each metric over runs. */
function medians(runs: Array<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.keys(runs[0]).map((k) => [k, percentile(runs.map((r) => r[k]), 50)]));
}

async function burstSection(s: EventsStack, scale: EventsScale): Promise<{ section: Section; rate: number }> {
  const configs = [
    { name: `${scale.burstRepositories} repositories, 1 relay`, repositories: scale.burstRepositories, replicas: 1, repeats: scale.burstRepeats },
    { name: `${scale.fewRepositories} repositories, 1 relay`, repositories: scale.fewRepositories, replicas: 1, repeats: 1 },
    { name: `${scale.burstRepositories} repositories, 2 relays`, repositories: scale.burstRepositories, replicas: 2, repeats: 1 },
  ];
  // Unmeasured: warms the relay up, and gives the new table the statistics a running registry's has
  // (without them the planner reads the claim's head of the outbox with a bitmap scan and a sort).
  const warmup = Math.max(5_000, Math.round(scale.burst / 5));
  log(`burst: warm-up of ${warmup} rows, then ANALYZE event_outbox, event_outbox_unsent`);
  await burst(s, warmup, scale.burstRepositories, 1);
  await withDb(s.stack.databaseUrl, (c) => c.query('ANALYZE event_outbox, event_outbox_unsent'));
  const results: Array<Record<string, number>> = [];
  const spreads: string[] = [];
  for (const c of configs) {
    const runs: Array<Record<string, number>> = [];
    for (let i = 0; i < c.repeats; i++) runs.push(await burst(s, scale.burst, c.repositories, c.replicas));
    results.push(medians(runs));
    if (c.repeats > 1) spreads.push(`${c.name}: ${runs.map((r) => Math.round(r.onTopicRate).toLocaleString('en-US')).join(', ')} events/s`);
  }
  return {
    rate: results[0].onTopicRate,
    section: {
      title: '1. Relay throughput: a burst of outbox rows',
      description:
        `${scale.burst.toLocaleString('en-US')} blob push events written straight into the outbox (through the store, order locks ` +
        'included) in one transaction, round-robin over the repositories, while the relay runs; timed from the commit until every ' +
        "event is on the topic (the partitions' high-water marks) and until a plain kafkajs consumer (started before) has read every " +
        'id. CPU per event, from the commit on: the relay processes, the ' +
        'PostgreSQL backends of the bench database, the whole Kafka broker (shared: its other users count too). First an unmeasured ' +
        'warm-up burst of a fifth the size, then `ANALYZE event_outbox, event_outbox_unsent`, so the tables have the statistics of a running registry.' +
        (spreads.length ? ` The first column is the median of ${scale.burstRepeats} runs (${spreads.join('; ')}).` : ''),
      columns: configs.map((c) => c.name),
      rows: BURST_ROWS.map(([label, key, digits]) => [label, ...results.map((r) => round(r[key], digits))]),
    },
  };
}

/**
 * Many small pushes through /v2: `clients` concurrent pushers for `seconds`; events/s produced,
 * how long after the last 201 every event was on the topic, and push → Kafka latency under load.
 */
async function pushesSection(s: EventsStack, scale: EventsScale): Promise<{ section: Section; p99: number }> {
  const topic = uniqueTopic('bench-pushes');
  const tap = await TopicTap.start(s.brokers, topic, PARTITIONS);
  const arrivals = new Arrivals();
  tap.onRecord((r) => arrivals.see(eventOf(r), r.at));
  const relays = await s.relays(topic);
  try {
    log(`pushes: ${scale.pushClients} concurrent pushers for ${scale.pushSeconds} s`);
    const cpu = s.meter(relays);
    const { pushes, seconds } = await pushLoad(s.stack.url, { clients: scale.pushClients, seconds: scale.pushSeconds, prefix: `load/${topic.slice(-6)}` });
    const lastAccepted = Math.max(...pushes.map((p) => p.acceptedAt));
    const events = pushes.length * EVENTS_PER_PUSH;
    const allAt = await tap.waitForCount(events, ARRIVAL_TIMEOUT_MS);
    await arrivals.waitFor(pushes, ARRIVAL_TIMEOUT_MS, 'the topic');
    const used = cpu();
    const latencies = arrivals.latencies(pushes, 'the topic');
    const p99 = percentile(latencies, 99);
    return {
      p99,
      section: {
        title: '2. Many small pushes through /v2',
        description:
          `${scale.pushClients} concurrent clients push small images (a config blob, one 1 KiB layer, an OCI manifest by tag: ` +
          `${EVENTS_PER_PUSH} push events each) through the gateway for ${scale.pushSeconds} s, to 4 repositories each. Latency: from ` +
          "the manifest PUT's 201 to its event read from the topic by a plain consumer. The relay keeps up when the lag after the " +
          'last push is about one poll interval.',
        columns: ['Lading split'],
        rows: [
          ['pushes/s ↑', round(pushes.length / seconds, 1)],
          ['events/s produced (and relayed) ↑', round(events / seconds, 0)],
          ['last 201 → every event on the topic (ms) ↓', round(allAt - lastAccepted, 0)],
          ['push → Kafka p50 under load (ms) ↓', round(percentile(latencies, 50), 1)],
          ['push → Kafka p99 under load (ms) ↓', round(p99, 1)],
          ['registry CPU per push (ms) ↓', round((used.registry * 1000) / pushes.length, 2)],
          ['relay CPU (% of one core) ↓', round((used.relay * 100) / seconds, 1)],
          ['PostgreSQL CPU per push (ms) ↓', round((used.postgres * 1000) / pushes.length, 2)],
        ],
      },
    };
  } finally {
    await s.drained();
    await Promise.all(relays.map((r) => r.stop()));
    await tap.close();
  }
}

/** Distribution's notifications section with one endpoint. */
function referenceNotifications(url: string): string[] {
  return ['notifications:', '  endpoints:', '    - name: bench', `      url: ${url}`, '      timeout: 2s', '      threshold: 10', '      backoff: 1s'];
}

/**
 * Latency at light load: one client pushes small images one after the other; push → Kafka and
 * push → webhook (a local receiver) for Lading, push → webhook for the reference registry.
 */
async function latencySection(s: EventsStack, scale: EventsScale, referenceBin: string): Promise<{ section: Section; kafkaP99: number; webhookP99: number }> {
  const topic = uniqueTopic('bench-latency');
  const tap = await TopicTap.start(s.brokers, topic, PARTITIONS);
  const kafka = new Arrivals();
  tap.onRecord((r) => kafka.see(eventOf(r), r.at));
  const lading = await startTimedReceiver();
  const reference = await startTimedReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'lading-bench-events-'));
  const config = join(dir, 'lading.yml');
  writeFileSync(config, stringify({ notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: 'bench', url: lading.receiver.url, timeout: '2s' }] } }));
  const relays = await s.relays(topic, 1, { LADING_CONFIG: config });
  const registry = await startReference(referenceBin, { driver: 'filesystem' }, referenceNotifications(reference.receiver.url));
  try {
    log(`latency: ${scale.latencyPushes} sequential pushes to Lading, then to the reference`);
    await sequentialPushes(s.stack.url, 5, `warm/${topic.slice(-6)}`);
    await sequentialPushes(registry.url, 5, 'warm');
    const ladingPushes = await sequentialPushes(s.stack.url, scale.latencyPushes, `lat/${topic.slice(-6)}`);
    const referencePushes = await sequentialPushes(registry.url, scale.latencyPushes, 'lat');
    await kafka.waitFor(ladingPushes, ARRIVAL_TIMEOUT_MS, 'the topic');
    await lading.arrivals.waitFor(ladingPushes, ARRIVAL_TIMEOUT_MS, "Lading's webhook receiver");
    await reference.arrivals.waitFor(referencePushes, ARRIVAL_TIMEOUT_MS, "the reference's webhook receiver");
    const toKafka = kafka.latencies(ladingPushes, 'the topic');
    const toWebhook = lading.arrivals.latencies(ladingPushes, 'the receiver');
    const refWebhook = reference.arrivals.latencies(referencePushes, 'the receiver');
    const row = (label: string, p: number): Row => {
      const l = percentile(toWebhook, p);
      const r = percentile(refWebhook, p);
      return [label, round(l, 1), round(r, 1), ratio(l, r)];
    };
    const rate = (pushes: Push[]) => pushes.length / ((pushes[pushes.length - 1].acceptedAt - pushes[0].acceptedAt) / 1000);
    return {
      kafkaP99: percentile(toKafka, 99),
      webhookP99: percentile(toWebhook, 99),
      section: {
        title: '3. Push → Kafka and push → webhook latency',
        description:
          `One client pushes ${scale.latencyPushes} small images one after the other (after 5 unmeasured), first to Lading, then ` +
          "to the reference registry. Latency: from the manifest PUT's 201 to its push event read from the topic (Lading) or " +
          'POSTed to a local webhook receiver (both; one endpoint each, answering 200 at once). Lading: outbox → relay (polls ' +
          'every `notifications.outbox.pollinterval`, 250 ms: the manifests process appends, notifications relays) → Kafka → ' +
          "the endpoint's consumer group → its delivery rows → the POST. The reference: an in-memory queue per endpoint in the " +
          'registry process (lost on a crash), filled before the 201 is written, so its POST often arrives before the client has ' +
          'the 201: a latency below zero.',
        columns: ['Lading split', 'reference', 'Lading / reference'],
        rows: [
          ['push → Kafka p50 (ms) ↓', round(percentile(toKafka, 50), 1), 'n/a', 'n/a'],
          ['push → Kafka p99 (ms) ↓', round(percentile(toKafka, 99), 1), 'n/a', 'n/a'],
          row('push → webhook p50 (ms) ↓', 50),
          row('push → webhook p99 (ms) ↓', 99),
          row('push → webhook max (ms) ↓', 100),
          ['sequential pushes/s ↑', round(rate(ladingPushes), 1), round(rate(referencePushes), 1), ratio(rate(ladingPushes), rate(referencePushes))],
        ],
      },
    };
  } finally {
    await s.drained();
    await Promise.all(relays.map((r) => r.stop()));
    await registry.stop();
    await tap.close();
    await lading.receiver.stop();
    await reference.receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The cost of events on push throughput: rounds of the push load alternating events off (no
 * notifications process: events still go into the outbox with each change, nothing relays them)
 * and on (one relaying to Kafka), the off round first in each pair; the backlog of an off round
 * is drained, unmeasured, before the on round. Also the reference with and without a webhook
 * endpoint, paired the same way.
 */
async function costSection(s: EventsStack, scale: EventsScale, referenceBin: string): Promise<{ section: Section; cost: number }> {
  const topic = uniqueTopic('bench-cost');
  const receiver = await startTimedReceiver();
  const plain = await startReference(referenceBin);
  const hooked = await startReference(referenceBin, { driver: 'filesystem' }, referenceNotifications(receiver.receiver.url));
  const ratios: number[] = [];
  const refRatios: number[] = [];
  const rates = { off: [] as number[], on: [] as number[], refOff: [] as number[], refOn: [] as number[] };
  const cpu = { off: [] as number[], on: [] as number[], relayOn: [] as number[], kafkaOn: [] as number[], kafkaOff: [] as number[] };
  const load = (url: string, prefix: string) => pushLoad(url, { clients: scale.pushClients, seconds: scale.costSeconds, prefix });
  /** One round of the load on Lading with events on or off; an off round's backlog is drained (unmeasured) after it. */
  const ladingRound = async (on: boolean, prefix: string) => {
    const relays = on ? await s.relays(topic) : [];
    try {
      const meter = s.meter(relays);
      const { pushes, seconds } = await load(s.stack.url, prefix);
      return { rate: pushes.length / seconds, n: pushes.length, used: meter() };
    } finally {
      if (!on) relays.push(...(await s.relays(topic)));
      await s.drained();
      await Promise.all(relays.map((r) => r.stop()));
    }
  };
  const referenceRound = async (on: boolean, prefix: string) => {
    const { pushes, seconds } = await load((on ? hooked : plain).url, prefix);
    return pushes.length / seconds;
  };
  try {
    for (let pair = 0; pair < scale.costPairs; pair++) {
      // Which goes first alternates from pair to pair, so an effect of the order cancels out.
      const order = pair % 2 === 0 ? [false, true] : [true, false];
      log(`cost: pair ${pair + 1} of ${scale.costPairs}: events ${order.map((o) => (o ? 'on' : 'off')).join(', then ')} (${scale.costSeconds} s each), then the reference the same way`);
      const results = new Map<boolean, Awaited<ReturnType<typeof ladingRound>>>();
      for (const on of order) results.set(on, await ladingRound(on, `${on ? 'on' : 'off'}${pair}/${topic.slice(-6)}`));
      const [off, on] = [results.get(false)!, results.get(true)!];
      rates.off.push(off.rate);
      rates.on.push(on.rate);
      ratios.push(on.rate / off.rate);
      const perPush = (seconds: number, n: number) => (seconds * 1000) / n;
      cpu.off.push(perPush(off.used.registry + off.used.postgres, off.n));
      cpu.on.push(perPush(on.used.registry + on.used.postgres, on.n));
      cpu.relayOn.push(perPush(on.used.relay, on.n));
      cpu.kafkaOff.push(perPush(off.used.kafka, off.n));
      cpu.kafkaOn.push(perPush(on.used.kafka, on.n));
      const ref = new Map<boolean, number>();
      for (const hook of order) ref.set(hook, await referenceRound(hook, `${hook ? 'on' : 'off'}${pair}`));
      rates.refOff.push(ref.get(false)!);
      rates.refOn.push(ref.get(true)!);
      refRatios.push(ref.get(true)! / ref.get(false)!);
    }
    const cost = 1 - percentile(ratios, 50);
    const m = (xs: number[]) => percentile(xs, 50);
    return {
      cost,
      section: {
        title: '4. The cost of events on push throughput',
        description:
          `${scale.costPairs} pairs of rounds of the push load (${scale.pushClients} clients, ${scale.costSeconds} s): Lading with ` +
          'events off (no notifications process runs: every change still writes its event into the outbox, in its own ' +
          'transaction, which cannot be switched off; nothing relays them) and on (one notifications process relays to Kafka), ' +
          "off first in odd pairs, on first in even ones; an off round's backlog is drained, unmeasured, right after it. Then the " +
          'reference registry without and with a webhook endpoint (a local receiver), in the same order. Medians over the pairs; ' +
          'the ratio is taken pair by pair. CPU per push: the registry ' +
          "(gateway, blob-upload, manifests) and the bench database's PostgreSQL backends, the relay, and the Kafka broker (shared: " +
          'other users of the test broker count too). On a machine this small the throughput ratio moves by more than the 5 % it is ' +
          'judged by; the relay\'s CPU against the CPU of the pushes themselves is the steadier estimate of the cost.',
        columns: ['Lading split', 'reference'],
        rows: [
          ['pushes/s, events off ↑', round(m(rates.off), 1), round(m(rates.refOff), 1)],
          ['pushes/s, events on ↑', round(m(rates.on), 1), round(m(rates.refOn), 1)],
          ['on / off (median of the pairs)', ratio(m(ratios), 1), ratio(m(refRatios), 1)],
          ['on / off of each pair', ratios.map((r) => r.toFixed(3)).join(', '), refRatios.map((r) => r.toFixed(3)).join(', ')],
          ['throughput cost of events (1 − on / off) ↓', `${(cost * 100).toFixed(1)} %`, `${((1 - m(refRatios)) * 100).toFixed(1)} %`],
          ['registry + PostgreSQL CPU per push, events off (ms) ↓', round(m(cpu.off), 2), 'n/a'],
          ['registry + PostgreSQL CPU per push, events on (ms) ↓', round(m(cpu.on), 2), 'n/a'],
          ['relay CPU per push, events on (ms) ↓', round(m(cpu.relayOn), 2), 'n/a'],
          ['Kafka broker CPU per push, events off / on (ms; shared broker) ↓', `${round(m(cpu.kafkaOff), 2)} / ${round(m(cpu.kafkaOn), 2)}`, 'n/a'],
          ['CPU cost of events: relay / (registry + PostgreSQL, events off) ↓', `${((m(cpu.relayOn) / m(cpu.off)) * 100).toFixed(1)} %`, 'n/a'],
        ],
      },
    };
  } finally {
    await Promise.all([plain.stop(), hooked.stop()]);
    await receiver.receiver.stop();
    await deleteTopic(s.brokers, topic);
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : 'n/a';
}

function cell(v: number | string): string {
  return typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: 2 }) : v;
}

function table(columns: string[], rows: Row[]): string[] {
  return [
    `| metric | ${columns.join(' | ')} |`,
    `| --- | ${columns.map(() => '---:').join(' | ')} |`,
    ...rows.map(([label, ...values]) => `| ${label} | ${values.map(cell).join(' | ')} |`),
  ];
}

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** `KEY=value,KEY=value` as an environment. */
function parseSettings(spec: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const part of (spec ?? '').split(',').filter(Boolean)) {
    const at = part.indexOf('=');
    if (at < 1 || !part.startsWith('LADING_')) throw new Error(`BENCH_EVENTS_RELAY: expected LADING_KEY=value, got "${part}"`);
    env[part.slice(0, at)] = part.slice(at + 1);
  }
  return env;
}

async function postgresFacts(): Promise<string> {
  return withDb(process.env.LADING_TEST_PG_URL!, async (c) => {
    const { rows } = await c.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit') ORDER BY name",
    );
    return rows.map((r) => `${r.name} ${r.setting}`).join(', ');
  });
}

async function main(): Promise<number> {
  const named = SCALES[process.env.BENCH_SCALE || 'full'];
  if (!named) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}`);
  const scale = { ...named, burst: Number(process.env.BENCH_EVENTS_BURST || named.burst) };
  if (!Number.isInteger(scale.burst) || scale.burst < 1) throw new Error(`BENCH_EVENTS_BURST must be a positive integer`);
  const storage = process.env.BENCH_EVENTS_STORAGE === 's3' ? 's3' : 'filesystem';
  const relayEnv = parseSettings(process.env.BENCH_EVENTS_RELAY);
  const workloads = new Set((process.env.BENCH_EVENTS_WORKLOADS || WORKLOADS.join(',')).split(','));
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`BENCH_EVENTS_WORKLOADS: one or more of ${WORKLOADS.join(', ')}; got "${w}"`);
  const referenceBin = process.env.BENCH_REFERENCE_BIN || REFERENCE_BIN;
  const out = process.env.BENCH_OUT || join(ROOT, 'bench/results', scale.name === 'full' ? 'latest-events.md' : `latest-events-${scale.name}.md`);
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' / ');
  const facts = [
    `Date: ${new Date().toISOString()}`,
    `Machine: nproc ${availableParallelism()} (${cpus()[0]?.model.trim() ?? 'unknown CPU'}); ${(totalmem() / GiB).toFixed(1)} GiB RAM; ${type()} ${release()}`,
    `Node ${process.version}; Lading commit ${git('rev-parse', '--short', 'HEAD') || 'unknown'}${git('status', '--porcelain', '--untracked-files=no') ? ' with uncommitted changes' : ''} (split: gateway, blob-upload, manifests, notifications; ${storage} storage)`,
    `Reference: CNCF Distribution ${referenceVersion(referenceBin)} (${referenceBin})`,
    `PostgreSQL (the test server): ${await postgresFacts()}; Kafka: the test broker at ${sharedKafkaBrokers().join(',')} (one broker; topics of ${PARTITIONS} partitions, replication factor 1)`,
    `Relay settings: ${Object.keys(relayEnv).length ? Object.entries(relayEnv).map(([k, v]) => `${k}=${v}`).join(', ') : 'the defaults'}`,
    `Scale: ${scale.name}`,
  ];
  const s3Root = `bench-events/${Date.now()}`;
  log(`starting the split stack (${storage} storage)`);
  const s = await EventsStack.start(storage, s3Root, relayEnv);
  running = s.stack;
  const sections: Section[] = [];
  const targets: Row[] = [];
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  try {
    if (workloads.has('burst')) {
      const b = await burstSection(s, scale);
      sections.push(b.section);
      targets.push(['≥ 10,000 events/s relayed (burst, commit → all on the topic)', round(b.rate, 0), verdict(b.rate >= 10_000)]);
    }
    if (workloads.has('pushes')) {
      const p = await pushesSection(s, scale);
      sections.push(p.section);
      targets.push(['push → Kafka p99 < 1 s (ms; under the push load)', round(p.p99, 1), verdict(p.p99 < 1000)]);
    }
    if (workloads.has('latency')) {
      const l = await latencySection(s, scale, referenceBin);
      sections.push(l.section);
      targets.push(['push → Kafka p99 < 1 s (ms; light load)', round(l.kafkaP99, 1), verdict(l.kafkaP99 < 1000)]);
      targets.push(['push → webhook p99 < 2 s (ms)', round(l.webhookP99, 1), verdict(l.webhookP99 < 2000)]);
    }
    if (workloads.has('cost')) {
      const c = await costSection(s, scale, referenceBin);
      sections.push(c.section);
      targets.push(['push throughput cost of events ≤ 5 %', `${(c.cost * 100).toFixed(1)} %`, verdict(c.cost <= 0.05)]);
    }
  } finally {
    running = undefined;
    await s.stack.stop();
    if (storage === 's3') await purgeS3Root(s3Root).catch(() => undefined);
  }
  facts.push(`Load average (1/5/15 min) before: ${loadBefore}; after: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`);
  const command = `${[...['BENCH_SCALE', 'BENCH_EVENTS_BURST', 'BENCH_EVENTS_STORAGE', 'BENCH_EVENTS_WORKLOADS', 'BENCH_EVENTS_RELAY'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`), 'bench/events'].join(' ')}`;
  facts.push(`Command: \`eval "$(bash scripts/services env)"\`, then \`${command}\``);
  const notes = [
    'The machine has 2 cores, shared by the registry processes, the relay, PostgreSQL, Kafka, the load generator and consumer (this ' +
      'Node process) and whatever else runs (see the load averages): the numbers move by ±30 % from run to run. CPU per event is the ' +
      'steadier comparison.',
    'The test PostgreSQL runs with fsync and synchronous_commit off; on a durable server each commit (two per relay batch: the claim, ' +
      'the mark) waits for a WAL flush, which larger batches amortise.',
    'Kafka is one broker (acks=all means that broker); the relay publishes through `notifications.kafka.producers` idempotent ' +
      'producers, one request in flight each.',
  ];
  if (process.env.BENCH_NOTE) notes.push(process.env.BENCH_NOTE);
  if (scale.name !== 'full') notes.push(`Scale \`${scale.name}\`: the targets are stated for the full scale; these numbers are indicative only.`);
  const markdown = [
    '# Events: outbox → Kafka relay and webhooks',
    '',
    ...facts.map((f) => `- ${f}`),
    '',
    '## Targets',
    '',
    ...table(['Lading', 'met?'], targets),
    '',
    ...sections.flatMap((sec) => [`## ${sec.title}`, '', sec.description, '', ...table(sec.columns, sec.rows), '']),
    '## Notes',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  console.log(markdown);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, markdown);
  log(`wrote ${relative(ROOT, out)}`);
  return 0;
}

let interrupted = false;
/** The split stack while it runs, for a stop on a signal. */
let running: SplitStack | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping the registries and dropping the database`);
    void Promise.allSettled([stopAll(), running?.stop()]).finally(() => process.exit(130));
  });
}

main().then(
  // The consumers' and producers' sockets are closed; kafkajs may still hold timers: exit now.
  (code) => process.exit(code),
  async (e) => {
    if (!interrupted) console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    await stopAll();
    process.exit(1);
  },
);
