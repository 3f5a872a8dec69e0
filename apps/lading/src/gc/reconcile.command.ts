import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DataDirLockedError,
  METADATA_MIGRATIONS,
  MetadataDb,
  ReconcileStore,
  openMetadataDb,
} from '@lading/metadata-db';
import type { LadingConfig } from '@lading/nest-common';
import { createBlobStorage } from '@lading/storage';
import { formatBytes, formatDuration, ProgressReporter, type CommandOutput } from './progress';
import { ReconcileService, type MissingBlob, type OrphanBlob, type ReconcileReport } from './reconcile.service';

export const RECONCILE_USAGE = `  gc reconcile [--delete] [--dry-run] [--json]
                        compare storage with the database: objects no row knows, rows whose
                        bytes are missing; --delete removes the orphans older than gc.reviewafter`;

/** How many entries of each list the text report shows (`--json` shows all). */
const SHOWN = 20;

/** Exit status when rows whose bytes are missing were found: the run worked, the registry needs attention. */
export const EXIT_MISSING_BYTES = 3;

/** Raised when reconcile cannot run against this configuration; the message says what to do. */
export class ReconcileRefusedError extends Error {
  constructor(message: string) {
    super(`lading gc reconcile: ${message}`);
    this.name = 'ReconcileRefusedError';
  }
}

/**
 * `lading gc reconcile [--delete] [--dry-run] [--json]`: one pass of {@link ReconcileService}
 * against the configured database and storage. Progress and the summary go to `err`; the report
 * to `out` (bounded text, or the whole report as JSON with `--json`). Returns the exit status:
 * 0, or {@link EXIT_MISSING_BYTES}.
 * @throws ReconcileRefusedError when the embedded database is in use or absent, the schema is
 *   not current, or the storage is in memory.
 */
export async function reconcileCommand(
  args: readonly string[],
  config: LadingConfig,
  output: CommandOutput = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const unknown = args.filter((a) => !['--delete', '--dry-run', '--json'].includes(a));
  if (unknown.length > 0) throw new ReconcileRefusedError(`unknown argument ${unknown.join(' ')}\n${RECONCILE_USAGE}`);
  const json = args.includes('--json');
  if (config.storage.driver === 'inmemory')
    throw new ReconcileRefusedError(
      'storage.inmemory lives inside the registry process: there is nothing to compare from outside',
    );
  const db = await openForReconcile(config);
  try {
    const progress = new ProgressReporter({ label: 'reconcile', stream: output.err });
    const service = new ReconcileService(new ReconcileStore(db), createBlobStorage(config.storage));
    const report = await service.reconcile({
      delete: args.includes('--delete'),
      dryRun: args.includes('--dry-run'),
      reviewAfter: config.gc.reviewafter,
      progress,
    });
    progress.done(summaryLine(report));
    output.out.write(json ? `${JSON.stringify(report, null, 2)}\n` : textReport(report));
    return report.missing.count > 0 ? EXIT_MISSING_BYTES : 0;
  } finally {
    await db.close();
  }
}

/**
 * Opens the metadata database without migrating it (a check changes no schema). PostgreSQL is
 * shared with a running registry; the embedded PGlite is one process's only: while the registry
 * runs, its lock (`<datadir>/db.lock`, holding its pid) refuses us, before anything is opened.
 */
async function openForReconcile(config: LadingConfig): Promise<MetadataDb> {
  let db: MetadataDb;
  if (config.database.url) {
    db = new MetadataDb(await openMetadataDb({ url: config.database.url, poolSize: 2, migrate: false }));
  } else {
    const dir = join(config.datadir, 'db');
    if (!existsSync(dir)) {
      throw new ReconcileRefusedError(
        `no embedded database at ${dir}: set datadir (LADING_DATA_DIR) to the registry's, or database.url (LADING_DATABASE_URL) for PostgreSQL`,
      );
    }
    try {
      db = new MetadataDb(await openMetadataDb({ pgliteDir: dir, migrate: false }));
    } catch (e) {
      if (!(e instanceof DataDirLockedError)) throw e;
      throw new ReconcileRefusedError(
        `${e.message}.\nThe embedded database can be opened by one process only, and the registry has it. ` +
          'Stop the registry (lading serve) and run reconcile again, or run the registry in split mode on PostgreSQL (database.url), ' +
          'where reconcile runs next to it.',
      );
    }
  }
  const applied = new Set(await db.appliedMigrations().catch(() => []));
  const pending = METADATA_MIGRATIONS.map((m) => m.name).filter((name) => !applied.has(name));
  if (pending.length > 0) {
    await db.close();
    throw new ReconcileRefusedError(
      `the database schema is not current (${pending.length} migrations not applied): run lading migrate first`,
    );
  }
  return db;
}

function summaryLine(r: ReconcileReport): string {
  const deleted = r.mode === 'delete' ? `, ${r.deleted.count} deleted (${formatBytes(r.deleted.bytes)})` : '';
  return (
    `reconcile: ${r.storage.count} blobs in storage, ${r.database.count} rows; ` +
    `${r.orphans.count} orphans (${formatBytes(r.orphans.bytes)})${deleted}, ${r.missing.count} rows with missing bytes (${formatBytes(r.missing.bytes)})`
  );
}

const STATUS_TEXT: Record<OrphanBlob['status'], string> = {
  young: 'kept: younger than the review delay',
  old: 'older than the review delay',
  deleted: 'deleted',
  known: 'kept: a row appeared meanwhile (a push finished)',
  committing: 'kept: an upload is committing it',
  busy: 'kept: its row stayed locked',
};

/** The report as text: tallies, and the first {@link SHOWN} entries of each list. */
export function textReport(r: ReconcileReport): string {
  const lines = [
    `storage clock ${r.storageTime.toISOString()}; review delay ${formatDuration(r.reviewAfter)}: orphans stored after ${r.cutoff.toISOString()} are kept`,
    `storage:  ${r.storage.count} blobs, ${formatBytes(r.storage.bytes)}`,
    `database: ${r.database.count} blobs rows, ${formatBytes(r.database.bytes)}`,
    '',
    `objects no row knows (orphans): ${r.orphans.count}, ${formatBytes(r.orphans.bytes)}${statusCounts(r.orphans.items)}`,
    ...bounded(
      r.orphans.items,
      (o) => `  ${o.digest}  ${formatBytes(o.size)}  stored ${o.modified.toISOString()}  ${STATUS_TEXT[o.status]}`,
    ),
    `rows whose bytes are missing: ${r.missing.count}, ${formatBytes(r.missing.bytes)}`,
    ...bounded(
      r.missing.items,
      (m) => `  ${m.digest}  ${formatBytes(m.size)}  row of ${m.createdAt.toISOString()}  ${missingText(m)}`,
    ),
    '',
  ];
  if (r.mode !== 'delete' && r.orphans.items.some((o) => o.status === 'old')) {
    lines.push(
      `${r.mode === 'dry-run' ? 'dry run: nothing changed; ' : ''}--delete would remove the orphans older than the review delay`,
    );
  }
  if (r.missing.count > 0)
    lines.push('rows whose bytes are missing are reported only: re-push those blobs (reconcile never changes rows)');
  lines.push('upload areas are not compared here: lading gc uploads purges those');
  return `${lines.join('\n')}\n`;
}

function missingText(m: MissingBlob): string {
  return m.storedSize === null ? 'no object' : `object of ${m.storedSize} bytes`;
}

function statusCounts(items: readonly OrphanBlob[]): string {
  const counts = new Map<string, number>();
  for (const o of items) counts.set(STATUS_TEXT[o.status], (counts.get(STATUS_TEXT[o.status]) ?? 0) + 1);
  return counts.size === 0 ? '' : ` (${[...counts].map(([text, n]) => `${n} ${text}`).join('; ')})`;
}

function bounded<T>(items: readonly T[], line: (item: T) => string): string[] {
  const shown = items.slice(0, SHOWN).map(line);
  if (items.length > SHOWN) shown.push(`  … and ${items.length - SHOWN} more (--json lists them all)`);
  return shown;
}
