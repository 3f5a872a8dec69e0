/**
 * The results as markdown: machine facts, the targets (met / not met), and one table
 * per workload with Lading, the reference and their ratio.
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
}

/** One workload's outcome: metrics per target name, in the order the targets ran. */
export interface WorkloadResult {
  workload: Workload;
  order: string[];
  values: Record<string, Record<string, number>>;
  error?: string;
}

/** A whole run. */
export interface BenchReport {
  scale: Scale;
  scaleSummary: string;
  machine: MachineFacts;
  results: WorkloadResult[];
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

const LADING = 'Lading';
const REFERENCE = 'reference';

const GOALS: Goal[] = [
  {
    label: (s) => `${binarySize(s.bigBlob)} push throughput ≥ 2× reference`,
    workload: 'push-big',
    metric: 'throughput',
    minRatio: 2,
  },
  {
    label: (s) => `${binarySize(s.smallBlob)} pushes throughput ≥ 2× reference`,
    workload: 'push-small',
    metric: 'throughput',
    minRatio: 2,
  },
  {
    label: (s) => `${binarySize(s.bigBlob)} pull throughput ≥ 1× reference`,
    workload: 'pull-big',
    metric: 'throughput',
    minRatio: 1,
  },
  { label: () => 'manifest GET requests/s ≥ 4× reference', workload: 'manifest-get', metric: 'rps', minRatio: 4 },
  {
    label: (s) => `Lading peak RSS < 200 MB during the ${binarySize(s.bigBlob)} push`,
    workload: 'push-big',
    metric: 'peakRss',
    maxLading: 200,
  },
  {
    label: (s) => `Lading peak RSS < 200 MB during the ${binarySize(s.bigBlob)} pull`,
    workload: 'pull-big',
    metric: 'peakRss',
    maxLading: 200,
  },
];

function fmt(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratioOf(values: Record<string, Record<string, number>>, metric: string): number | undefined {
  const lading = values[LADING]?.[metric];
  const reference = values[REFERENCE]?.[metric];
  return lading !== undefined && reference !== undefined && reference !== 0 ? lading / reference : undefined;
}

function fmtRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? 'n/a' : `${ratio.toFixed(2)}×`;
}

/** The targets table. */
export function goalsTable(report: BenchReport): string {
  const rows = ['| target | Lading | reference | Lading / reference | met? |', '| --- | ---: | ---: | ---: | :---: |'];
  for (const goal of GOALS) {
    const result = report.results.find((r) => r.workload.id === goal.workload);
    const metric = result?.workload.metrics.find((m) => m.key === goal.metric);
    const values = result?.values ?? {};
    const lading = values[LADING]?.[goal.metric];
    const ratio = ratioOf(values, goal.metric);
    let met: boolean | undefined;
    if (!result?.error && goal.minRatio !== undefined && ratio !== undefined) met = ratio >= goal.minRatio;
    if (!result?.error && goal.maxLading !== undefined && lading !== undefined) met = lading < goal.maxLading;
    const digits = metric?.digits ?? 1;
    rows.push(
      `| ${goal.label(report.scale)} | ${fmt(lading, digits)} | ${fmt(values[REFERENCE]?.[goal.metric], digits)} | ` +
        `${fmtRatio(ratio)} | ${met === undefined ? 'n/a' : met ? 'met' : '**not met**'} |`,
    );
  }
  return rows.join('\n');
}

/** One workload's table. */
export function workloadTable(result: WorkloadResult): string {
  const rows = ['| metric | Lading | reference | Lading / reference |', '| --- | ---: | ---: | ---: |'];
  for (const m of result.workload.metrics) {
    const arrow = m.better === 'higher' ? ' ↑' : m.better === 'lower' ? ' ↓' : '';
    rows.push(
      `| ${m.label}${arrow} | ${fmt(result.values[LADING]?.[m.key], m.digits)} | ${fmt(result.values[REFERENCE]?.[m.key], m.digits)} | ` +
        `${fmtRatio(ratioOf(result.values, m.key))} |`,
    );
  }
  return rows.join('\n');
}

/** The whole report as markdown. */
export function renderReport(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [
    '# Lading vs the reference registry',
    '',
    `- Date: ${m.date}`,
    `- Machine: ${m.cpus}; ${m.memory}; ${m.os}`,
    `- Node ${m.node}; Lading ${m.lading} (embedded: one process, PGlite, filesystem storage)`,
    `- Reference: ${m.reference}`,
    `- Scale: ${report.scaleSummary}`,
    `- Load average (1/5/15 min) before: ${m.loadBefore}; after: ${m.loadAfter}`,
    '',
    '## Targets',
    '',
    goalsTable(report),
    '',
  ];
  report.results.forEach((result, i) => {
    out.push(
      `## ${i + 1}. ${result.workload.title}`,
      '',
      result.workload.description,
      '',
      `Order: ${result.order.join(' first, then ')}.`,
      '',
    );
    if (result.error) out.push(`**Failed:** ${result.error}`, '');
    out.push(workloadTable(result), '');
  });
  out.push('## Notes', '', ...report.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
