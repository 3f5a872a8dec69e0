import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource } from 'typeorm';
import { METADATA_ENTITIES } from './entities/registry.entity';
import { METADATA_MIGRATIONS } from './migrations';
import { createPgliteDriver, PgliteThread } from './pglite.driver';
import { markSoleWriter } from './unit-of-work';

/** Where the metadata lives: a PostgreSQL server (`url`) or embedded PGlite (`pgliteDir`). */
export interface OpenMetadataDbOptions {
  /** `postgres://user:pass@host:port/db`; when set, PostgreSQL is used. */
  url?: string;
  /** A folder for embedded PGlite, or `memory://` for a throwaway database. */
  pgliteDir?: string;
  /** Connections per process for PostgreSQL. */
  poolSize?: number;
  /** Run pending migrations on open (guarded by an advisory lock on PostgreSQL). */
  migrate?: boolean;
}

const MIGRATION_LOCK_KEY = 7_364_281;

/**
 * Opens the metadata database and, unless told not to, brings its schema up to date.
 * Throws when the database cannot be reached or a migration fails.
 */
export async function openMetadataDb(options: OpenMetadataDbOptions): Promise<DataSource> {
  const base = {
    type: 'postgres' as const,
    entities: METADATA_ENTITIES,
    migrations: METADATA_MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    installExtensions: false,
    logging: false,
  };
  let ds: DataSource;
  if (options.url) {
    ds = new DataSource({ ...base, url: options.url, poolSize: options.poolSize ?? 10, parseInt8: true });
  } else {
    const dir = options.pgliteDir ?? 'memory://';
    let unlock = () => undefined as void;
    if (!dir.startsWith('memory://')) {
      mkdirSync(dirname(dir), { recursive: true });
      unlock = lockDataDir(`${dir}.lock`);
    }
    const db = await PgliteThread.start(dir).catch((e: unknown) => {
      unlock();
      throw e;
    });
    const closeDb = db.close.bind(db);
    db.close = async () => {
      try {
        await closeDb();
      } finally {
        unlock();
      }
    };
    ds = new DataSource({ ...base, driver: createPgliteDriver(db), database: 'postgres' });
    markSoleWriter(ds);
  }
  await ds.initialize();
  if (options.migrate !== false) await migrate(ds, Boolean(options.url));
  return ds;
}

/** Raised when another live process holds the embedded database. */
export class DataDirLockedError extends Error {
  constructor(lockFile: string, pid: number) {
    super(`the embedded database is in use by process ${pid} (${lockFile}); PGlite allows one process per data folder — use PostgreSQL (database.url) to run several`);
    this.name = 'DataDirLockedError';
  }
}

/**
 * PGlite is a single-process database: a second process opening the same folder would corrupt it.
 * A lock file with our pid guards it; a lock left by a dead process is taken over.
 */
const heldLocks = new Set<string>();

function lockDataDir(lockFile: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldLocks.add(lockFile);
      return () => {
        heldLocks.delete(lockFile);
        try {
          unlinkSync(lockFile);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lockFile, 'utf8'));
      // Our own pid in a lock we do not hold is a previous incarnation (pid 1 in a container).
      const live = pid === process.pid ? heldLocks.has(lockFile) : pid > 0 && isAlive(pid);
      if (live) throw new DataDirLockedError(lockFile, pid);
      unlinkSync(lockFile);
    }
  }
  throw new Error(`could not lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function migrate(ds: DataSource, shared: boolean): Promise<void> {
  if (!shared) {
    await ds.runMigrations({ transaction: 'all' });
    return;
  }
  // Several processes may start at once against one server: one migrates, the others wait.
  const runner = ds.createQueryRunner();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await ds.runMigrations({ transaction: 'all' });
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}
