/**
 * The results as markdown: machine facts, then per round (one, or several such as redirects off
 * and on) the targets (met / not met), one table per workload with every target and the
 * suite's ratios, and the per-process breakdown of a multi-process target; with several rounds,
 * a summary of the headline ratios first.
 */
import type { Scale, Workload } from './workloads';
import { binarySize } from './stats';

/** What a reader needs to know about where the numbers came from. */
export interface MachineFacts {
  date: string;
  cpus: string;
  memory: string;
  os: string;
  node: string;
  lading: string;
  reference: string;
  loadBefore: string;
  loadAfter: string;
  /** The command line that produced the report (the `BENCH_*` settings and `bench/run`). */
  command: string;
}

/** One workload's outcome: metrics per target name, in the order the targets ran. */
export interface WorkloadResult {
  workload: Workload;
  order: string[];
  values: Record<string, Record<string, number>>;
  error?: string;
}

/** A ratio column: `numerator / denominator`, both target names. */
export interface Ratio {
  numerator: string;
  denominator: string;
}

/** One set of targets run through the workloads (a suite may have several: redirects off, then on). */
export interface RoundReport {
  /** A heading, when the report has several rounds. */
  title?: string;
  description?: string;
  /** The target names, in column order; the reference registry is `reference`. */
  targets: string[];
  results: WorkloadResult[];
}

/** A whole run. */
export interface BenchReport {
  title: string;
  /** What Lading runs as, after its commit: `(embedded: one process, PGlite, filesystem storage)`. */
  ladingSetup: string;
  /** More facts, after the scale. */
  facts: string[];
  scale: Scale;
  scaleSummary: string;
  machine: MachineFacts;
  ratios: Ratio[];
  rounds: RoundReport[];
  notes: string[];
}

/** A target from the issue: a minimum Lading/reference ratio, or a maximum for Lading's own value. */
interface Goal {
  label: (scale: Scale) => string;
  workload: string;
  metric: string;
  minRatio?: number;
  maxLading?: number;
}

const REFERENCE = 'reference';

/**
 * Issue 11's targets, judged on the runs of the clients users run (curl, wrk); the Node
 * client's runs are reported beside them but judge nothing (its pulls are client-bound). A goal
 * whose workload did not run here (no wrk, another suite) is left out of the table.
 */
const GOALS: Goal[] = [
  { label: (s) => `${binarySize(s.bigBlob)} pull (curl) ≥ 0.95× reference`, workload: 'curl-pull-big', metric: 'throughput', minRatio: 0.95 },
  { label: (s) => `${binarySize(s.bigBlob)} push (curl -T) ≥ 1.5× reference`, workload: 'curl-push-big', metric: 'throughput', minRatio: 1.5 },
  { label: (s) => `${binarySize(s.smallBlob)} pushes (curl -T) ≥ 1.5× reference`, workload: 'curl-push-small', metric: 'throughput', minRatio: 1.5 },
  { label: () => 'manifest GET (wrk) requests/s ≥ 5× reference', workload: 'wrk-manifest-get', metric: 'rps', minRatio: 5 },
  { label: () => 'manifest GET (wrk) p99 ≤ 10 ms', workload: 'wrk-manifest-get', metric: 'p99', maxLading: 10 },
  { label: () => 'small blob GET (wrk) requests/s ≥ 3× reference', workload: 'wrk-small-blob-get', metric: 'rps', minRatio: 3 },
  {
    label: (s) => `a ${binarySize(s.bigBlob)} push adds ≤ 32 MB to the server's RSS`,
    workload: 'curl-push-big',
    metric: 'rssGrowth',
    maxLading: 32,
  },
  {
    label: (s) => `a ${binarySize(s.bigBlob)} pull adds ≤ 32 MB to the server's RSS`,
    workload: 'curl-pull-big',
    metric: 'rssGrowth',
    maxLading: 32,
  },
];

function fmt(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratioOf(values: Record<string, Record<string, number>>, metric: string, ratio: Ratio): number | undefined {
  const top = values[ratio.numerator]?.[metric];
  const bottom = values[ratio.denominator]?.[metric];
  return top !== undefined && bottom !== undefined && bottom !== 0 ? top / bottom : undefined;
}

function fmtRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? 'n/a' : `${ratio.toFixed(2)}×`;
}

function ratioLabel(ratio: Ratio): string {
  return `${ratio.numerator} / ${ratio.denominator}`;
}

/** The ratios whose both sides are in the round. */
function ratiosOf(report: BenchReport, round: RoundReport): Ratio[] {
  return report.ratios.filter((r) => round.targets.includes(r.numerator) && round.targets.includes(r.denominator));
}

function tableHead(first: string, columns: string[], align: string[]): string[] {
  return [`| ${[first, ...columns].join(' | ')} |`, `| ${['---', ...align].join(' | ')} |`];
}

/** The targets table: each Lading target against the reference. */
export function goalsTable(report: BenchReport, round: RoundReport): string {
  const ratios = ratiosOf(report, round).filter((r) => r.denominator === REFERENCE);
  const lading = round.targets.filter((t) => t !== REFERENCE);
  const rows = tableHead(
    'target',
    [...round.targets, ...ratios.map(ratioLabel), lading.length > 1 ? `met? (${lading.join(' / ')})` : 'met?'],
    [...round.targets.map(() => '---:'), ...ratios.map(() => '---:'), ':---:'],
  );
  for (const goal of GOALS) {
    const result = round.results.find((r) => r.workload.id === goal.workload);
    if (!result) continue;
    const metric = result?.workload.metrics.find((m) => m.key === goal.metric);
    const values = result?.values ?? {};
    const verdicts = lading.map((t) => {
      const own = values[t]?.[goal.metric];
      const ratio = ratioOf(values, goal.metric, { numerator: t, denominator: REFERENCE });
      let met: boolean | undefined;
      if (!result?.error && goal.minRatio !== undefined && ratio !== undefined) met = ratio >= goal.minRatio;
      if (!result?.error && goal.maxLading !== undefined && own !== undefined) met = own <= goal.maxLading;
      return met === undefined ? 'n/a' : met ? 'met' : '**not met**';
    });
    const digits = metric?.digits ?? 1;
    const cells = [
      ...round.targets.map((t) => fmt(values[t]?.[goal.metric], digits)),
      ...ratios.map((r) => fmtRatio(ratioOf(values, goal.metric, r))),
      verdicts.join(' / '),
    ];
    rows.push(`| ${goal.label(report.scale)} | ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

/** One workload's table; a metric no target has (a backend's CPU where there is none) is left out. */
export function workloadTable(report: BenchReport, round: RoundReport, result: WorkloadResult): string {
  const ratios = ratiosOf(report, round);
  const rows = tableHead(
    'metric',
    [...round.targets, ...ratios.map(ratioLabel)],
    [...round.targets, ...ratios].map(() => '---:'),
  );
  for (const m of result.workload.metrics) {
    if (round.targets.every((t) => result.values[t]?.[m.key] === undefined)) continue;
    const arrow = m.better === 'higher' ? ' ↑' : m.better === 'lower' ? ' ↓' : '';
    const cells = [
      ...round.targets.map((t) => fmt(result.values[t]?.[m.key], m.digits)),
      ...ratios.map((r) => fmtRatio(ratioOf(result.values, m.key, r))),
    ];
    rows.push(`| ${m.label}${arrow} | ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

/** The apps of `target` that have per-app metrics (`<key>@<app>`) in the round, in first-seen order. */
function appsOf(round: RoundReport, target: string): string[] {
  const apps = new Set<string>();
  for (const r of round.results)
    for (const key of Object.keys(r.values[target] ?? {})) {
      const at = key.indexOf('@');
      if (at > 0) apps.add(key.slice(at + 1));
    }
  return [...apps];
}

/** Per process of a multi-process target: each workload's CPU and peak memory by app, and their sum. */
export function appsTable(round: RoundReport, target: string): string | undefined {
  const apps = appsOf(round, target);
  if (apps.length === 0) return undefined;
  const rows = tableHead(
    'workload: metric',
    [...apps, 'all'],
    [...apps, 'all'].map(() => '---:'),
  );
  round.results.forEach((r, i) => {
    const values = r.values[target] ?? {};
    for (const m of r.workload.metrics) {
      if (!apps.some((app) => values[`${m.key}@${app}`] !== undefined)) continue;
      const cells = [...apps.map((app) => fmt(values[`${m.key}@${app}`], m.digits)), fmt(values[m.key], m.digits)];
      rows.push(`| ${i + 1}. ${r.workload.title}: ${m.label} | ${cells.join(' | ')} |`);
    }
  });
  return rows.join('\n');
}

/** Headline metrics of every round side by side, as ratios: for a suite of several rounds. */
export function summaryTable(report: BenchReport): string {
  const columns = report.rounds.flatMap((round) => ratiosOf(report, round).map((ratio) => ({ round, ratio })));
  const rows = tableHead(
    'workload: metric',
    columns.map((c) => `${c.round.title}: ${ratioLabel(c.ratio)}`),
    columns.map(() => '---:'),
  );
  const first = report.rounds[0];
  first.results.forEach((r, i) => {
    for (const m of r.workload.metrics.filter((x) => x.headline)) {
      const arrow = m.better === 'higher' ? ' ↑' : m.better === 'lower' ? ' ↓' : '';
      const cells = columns.map(({ round, ratio }) => {
        const same = round.results.find((x) => x.workload.id === r.workload.id);
        return fmtRatio(same ? ratioOf(same.values, m.key, ratio) : undefined);
      });
      rows.push(`| ${i + 1}. ${r.workload.title}: ${m.label}${arrow} | ${cells.join(' | ')} |`);
    }
  });
  return rows.join('\n');
}

/** The whole report as markdown. */
export function renderReport(report: BenchReport): string {
  const m = report.machine;
  const several = report.rounds.length > 1;
  const h = several ? '###' : '##';
  const out: string[] = [
    `# ${report.title}`,
    '',
    `- Date: ${m.date}`,
    `- Machine: ${m.cpus}; ${m.memory}; ${m.os}`,
    `- Node ${m.node}; Lading ${m.lading} ${report.ladingSetup}`,
    `- Reference: ${m.reference}`,
    `- Command: ${m.command}`,
    `- Scale: ${report.scaleSummary}`,
    ...report.facts.map((f) => `- ${f}`),
    `- Load average (1/5/15 min) before: ${m.loadBefore}; after: ${m.loadAfter}`,
    '',
  ];
  if (several) out.push('## Summary of ratios', '', summaryTable(report), '');
  for (const round of report.rounds) {
    if (several) out.push(`## ${round.title}`, '');
    if (round.description) out.push(round.description, '');
    out.push(`${h} Targets`, '', goalsTable(report, round), '');
    round.results.forEach((result, i) => {
      out.push(
        `${h} ${i + 1}. ${result.workload.title}`,
        '',
        result.workload.description,
        '',
        `Order: ${result.order[0]} first, then ${result.order.slice(1).join(', then ')}.`,
        '',
      );
      if (result.error) out.push(`**Failed:** ${result.error}`, '');
      out.push(workloadTable(report, round, result), '');
    });
    for (const target of round.targets) {
      const table = appsTable(round, target);
      if (table) out.push(`${h} ${target}: per process`, '', table, '');
    }
  }
  out.push('## Notes', '', ...report.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
