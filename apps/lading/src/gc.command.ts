import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { GarbageCollector, GcWorkerModule, summarize, type GcBatchResult, type GcRunSummary } from '@lading/app-gc-worker';
import type { GcQueue } from '@lading/metadata-db';
import { adminToken, LadingCoreModule, loadConfig, type LadingConfig } from '@lading/nest-common';
import { formatBytes, ProgressReporter, type CommandOutput, type ProgressTotals } from './gc/progress';

export const GC_USAGE = `  gc run [--dry-run] [--url U]   one garbage collection pass now, with progress and a summary
  gc status [--url U]            GC queue depths, the oldest due item, the last runs
      (through the admin API of a running gc-worker (services.gcworker.url) or embedded
      registry (http.addr), or --url U; with none running, \`gc run\` works in this process)`;

/**
 * A run's batches on the shared progress display: a phase per pass over a queue (the collector
 * goes manifests → links → blobs, and again while deletes queue more), counting items reviewed
 * and bytes reclaimed, its bar out of what the pass has reviewed plus what was due when its
 * latest batch began (deletes queue more as they go, so the total grows).
 */
class RunProgress {
  private queue: GcQueue | undefined;
  private reviewed = 0;
  constructor(private readonly reporter: ProgressReporter) {}

  batch(b: GcBatchResult): void {
    if (b.queue !== this.queue) {
      this.queue = b.queue;
      this.reviewed = 0;
      this.reporter.phase(b.queue, this.totals(b));
    } else this.reporter.retotal(this.totals(b));
    this.reporter.advance(b.reviewed, b.bytes);
    this.reviewed += b.reviewed;
  }

  private totals(b: GcBatchResult): ProgressTotals {
    // Another worker or a push may have made more rows due meanwhile: never less than the batch.
    return b.due === undefined ? {} : { items: this.reviewed + Math.max(b.due, b.reviewed) };
  }
}

/**
 * `lading gc run|status`. A running registry holds the garbage collector (and, embedded, the
 * database): the command asks it over the admin API. `gc run` with no registry answering runs
 * the collector in this process instead (as one more worker: safe beside running ones). The
 * result (status, run summary) goes to `output.out`, progress and notes to `output.err`. False
 * when the arguments name no such command.
 */
export async function gcCommand(args: string[], config: LadingConfig, output: CommandOutput = { out: process.stdout, err: process.stderr }): Promise<boolean> {
  const [sub] = args;
  if (sub !== 'run' && sub !== 'status') return false;
  const dryRun = args.includes('--dry-run');
  const i = args.indexOf('--url');
  const base = i >= 0 ? args[i + 1] : (config.services.gcworker.url ?? `http://${config.http.addr.replace(/^(0\.0\.0\.0|\[::\]|):/, '127.0.0.1:')}`);
  const reporter = new ProgressReporter({ label: 'gc', stream: output.err });
  const progress = new RunProgress(reporter);
  let res: Response;
  try {
    if (!config.http.secret) throw new AdminUnavailable('the admin API needs http.secret (LADING_HTTP_SECRET), as the registry has it');
    const path = sub === 'run' ? `/admin/gc/run${dryRun ? '?dryrun=true' : ''}` : '/admin/gc/status';
    res = await fetch(new URL(path, base!), { method: sub === 'run' ? 'POST' : 'GET', headers: { authorization: `Bearer ${adminToken(config.http.secret)}` } }).catch((e: Error) => {
      throw new AdminUnavailable(`no registry answers at ${base} (${(e.cause as Error | undefined)?.message ?? e.message})`);
    });
  } catch (e) {
    if (!(e instanceof AdminUnavailable)) throw e;
    if (sub === 'status') throw new Error(`lading gc status: ${e.message}; start the registry or pass --url`);
    output.err.write(`lading gc: ${e.message}; running the collector in this process\n`);
    const summary = summarize(await runInProcess(dryRun, (b) => progress.batch(b)), dryRun);
    reporter.done();
    output.out.write(summaryText(summary));
    return true;
  }
  if (!res.ok) {
    output.err.write(`lading gc: ${res.status} ${await res.text()}\n`);
    process.exitCode = 1;
    return true;
  }
  if (sub === 'status') {
    output.out.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
    return true;
  }
  let summary: GcRunSummary | undefined;
  for await (const line of lines(res)) {
    const msg = JSON.parse(line) as { batch?: GcBatchResult; summary?: GcRunSummary; error?: string };
    if (msg.batch) progress.batch(msg.batch);
    if (msg.summary) summary = msg.summary;
    if (msg.error) throw new Error(`lading gc run: ${msg.error}`);
  }
  reporter.done();
  if (!summary) throw new Error('lading gc run: the registry ended the run without a summary');
  output.out.write(summaryText(summary));
  return true;
}

class AdminUnavailable extends Error {}

async function runInProcess(dryRun: boolean, onProgress: (b: GcBatchResult) => void): Promise<GcBatchResult[]> {
  // Loops and upload purging off: one pass, here and now.
  const config = loadConfig(undefined, { gc: { disabled: true }, storage: { maintenance: { uploadpurging: { enabled: false } } } });
  @Module({ imports: [LadingCoreModule.forRoot(config), GcWorkerModule] })
  class GcRunModule {}
  const ctx = await NestFactory.createApplicationContext(GcRunModule, { logger: ['error', 'warn'] });
  try {
    return await ctx.get(GarbageCollector).runOnce({ dryRun, onProgress });
  } finally {
    await ctx.close();
  }
}

/** The summary a run ends with: totals, then per queue and per media type. */
function summaryText(s: GcRunSummary): string {
  const verb = s.dryRun ? 'would delete' : 'deleted';
  const lines = [`gc ${s.dryRun ? 'dry run' : 'run'}: reviewed ${s.reviewed} items in ${s.batches} batches; ${verb} ${s.deleted} (${formatBytes(s.bytes)}); postponed ${s.postponed}`];
  for (const [queue, q] of Object.entries(s.byQueue)) lines.push(`  ${queue.padEnd(9)} reviewed ${q.reviewed}, ${verb} ${q.deleted} (${formatBytes(q.bytes)})`);
  for (const [type, t] of Object.entries(s.byMediaType)) lines.push(`  ${type}: ${t.rows} (${formatBytes(t.bytes)})`);
  return `${lines.join('\n')}\n`;
}

async function* lines(res: Response): AsyncIterable<string> {
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (rest.trim()) yield rest.trim();
}
