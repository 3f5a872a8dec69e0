import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { GarbageCollector, GcWorkerModule, summarize, type GcBatchResult, type GcRunSummary } from '@lading/app-gc-worker';
import { adminToken, LadingCoreModule, loadConfig, type LadingConfig } from '@lading/nest-common';
import { formatBytes } from './gc/progress';

export const GC_USAGE = `  gc run [--dry-run] [--url U]   one garbage collection pass now, with progress and a summary
  gc status [--url U]            GC queue depths, the oldest due item, the last runs
      (through the admin API of a running gc-worker (services.gcworker.url) or embedded
      registry (http.addr), or --url U; with none running, \`gc run\` works in this process)`;

/** Prints a run's progress: a bar rewritten in place on a terminal, a line per batch otherwise. */
class RunProgress {
  private items = 0;
  private deleted = 0;
  private bytes = 0;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  batch(b: GcBatchResult): void {
    this.items += b.reviewed;
    this.deleted += b.deleted;
    this.bytes += b.bytes;
    const line = `${b.queue.padEnd(9)} reviewed ${this.items} items, deleted ${this.deleted} (${formatBytes(this.bytes)})`;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${spinner(this.items)} ${line}`);
    else this.out.write(`gc: ${line}\n`);
  }

  end(): void {
    if (this.out.isTTY && this.items > 0) this.out.write('\n');
  }
}

/**
 * `lading gc run|status`. A running registry holds the garbage collector (and, embedded, the
 * database): the command asks it over the admin API. `gc run` with no registry answering runs
 * the collector in this process instead (as one more worker: safe beside running ones). False
 * when the arguments name no such command.
 */
export async function gcCommand(args: string[], config: LadingConfig): Promise<boolean> {
  const [sub] = args;
  if (sub !== 'run' && sub !== 'status') return false;
  const dryRun = args.includes('--dry-run');
  const i = args.indexOf('--url');
  const base = i >= 0 ? args[i + 1] : (config.services.gcworker.url ?? `http://${config.http.addr.replace(/^(0\.0\.0\.0|\[::\]|):/, '127.0.0.1:')}`);
  const progress = new RunProgress();
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
    console.error(`lading gc: ${e.message}; running the collector in this process`);
    const summary = summarize(await runInProcess(dryRun, (b) => progress.batch(b)), dryRun);
    progress.end();
    printSummary(summary);
    return true;
  }
  if (!res.ok) {
    console.error(`lading gc: ${res.status} ${await res.text()}`);
    process.exitCode = 1;
    return true;
  }
  if (sub === 'status') {
    console.log(JSON.stringify(await res.json(), null, 2));
    return true;
  }
  let summary: GcRunSummary | undefined;
  for await (const line of lines(res)) {
    const msg = JSON.parse(line) as { batch?: GcBatchResult; summary?: GcRunSummary; error?: string };
    if (msg.batch) progress.batch(msg.batch);
    if (msg.summary) summary = msg.summary;
    if (msg.error) throw new Error(`lading gc run: ${msg.error}`);
  }
  progress.end();
  if (!summary) throw new Error('lading gc run: the registry ended the run without a summary');
  printSummary(summary);
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

function printSummary(s: GcRunSummary): void {
  const verb = s.dryRun ? 'would delete' : 'deleted';
  console.log(`gc ${s.dryRun ? 'dry run' : 'run'}: reviewed ${s.reviewed} items in ${s.batches} batches; ${verb} ${s.deleted} (${formatBytes(s.bytes)}); postponed ${s.postponed}`);
  for (const [queue, q] of Object.entries(s.byQueue)) console.log(`  ${queue.padEnd(9)} reviewed ${q.reviewed}, ${verb} ${q.deleted} (${formatBytes(q.bytes)})`);
  for (const [type, t] of Object.entries(s.byMediaType)) console.log(`  ${type}: ${t.rows} (${formatBytes(t.bytes)})`);
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

function spinner(n: number): string {
  return '|/-\\'[n % 4]!;
}
