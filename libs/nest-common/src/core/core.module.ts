import {
  DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { hostname } from 'node:os';
import { MetadataDb, openMetadataDb, PullEventBuffer } from '@lading/metadata-db';
import { createBlobStorage } from '@lading/storage';
import type { LadingConfig } from '../config/lading.config';
import { SampledCounter, SampledGauge } from '../metrics/metrics';
import { HealthChecks } from '../health/health.checks';
import { BLOB_STORAGE, LADING_CONFIG } from './tokens';

const dbPool = new SampledGauge({
  name: 'lading_db_pool_connections',
  help: 'Connections of the PostgreSQL pool: in use, idle, and requests waiting for one (none for the embedded PGlite).',
  labelNames: ['state'],
});

const pullEvents = {
  events: new SampledCounter({
    name: 'lading_pull_events_total',
    help: "Pull events of this process's buffer: recorded (a pull happened), written (to the outbox), dropped (buffer full, a write failed with no room, or after shutdown).",
    labelNames: ['outcome'],
  }),
  failedWrites: new SampledCounter({
    name: 'lading_pull_event_write_failures_total',
    help: 'Batch writes of pull events to the outbox that failed (retried).',
  }),
  buffered: new SampledGauge({
    name: 'lading_pull_events_buffered',
    help: 'Pull events held in memory, not yet written: what a crash now would lose.',
  }),
};

/** The counts of a `pg` pool, which TypeORM's PostgreSQL driver keeps as `driver.master`. */
interface PgPoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

function pgPoolOf(ds: DataSource): PgPoolCounts | undefined {
  const pool = (ds.driver as { master?: Partial<PgPoolCounts> }).master;
  return typeof pool?.totalCount === 'number' ? (pool as PgPoolCounts) : undefined;
}

/**
 * Closes the database when the app stops, after the HTTP server has (Nest's shutdown hooks run
 * once it is closed): the pull events of the last requests are written first.
 */
@Injectable()
class MetadataDbCloser implements OnApplicationShutdown, OnModuleInit {
  private readonly removeGauges: (() => void)[] = [];

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(PullEventBuffer) private readonly pulls: PullEventBuffer,
    @Inject(HealthChecks) private readonly health: HealthChecks,
  ) {}

  onModuleInit(): void {
    this.health.addReadiness('pullEvents', async () => ({ ok: true, report: this.pulls.stats() }));
    this.removeGauges.push(
      pullEvents.events.add((set) => {
        const { recorded, written, dropped } = this.pulls.stats();
        set({ outcome: 'recorded' }, recorded);
        set({ outcome: 'written' }, written);
        set({ outcome: 'dropped' }, dropped);
      }),
      pullEvents.failedWrites.add((set) => set({}, this.pulls.stats().failedWrites)),
      pullEvents.buffered.add((set) => set({}, this.pulls.stats().pending)),
    );
    const pool = pgPoolOf(this.db.dataSource);
    if (pool) {
      this.removeGauges.push(
        dbPool.add((set) => {
          set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
          set({ state: 'idle' }, pool.idleCount);
          set({ state: 'waiting' }, pool.waitingCount);
        }),
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const remove of this.removeGauges.splice(0)) remove();
    try {
      await this.pulls.close();
    } finally {
      await this.db.close();
    }
  }
}

/**
 * What every app wires the same way: the configuration, the metadata database (PostgreSQL when
 * `database.url` is set, else embedded PGlite under `<datadir>/db`), the blob storage driver,
 * the buffer of pull events and the health checks modules add to.
 */
@Global()
@Module({})
export class LadingCoreModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: LadingCoreModule,
      providers: [
        { provide: LADING_CONFIG, useValue: config },
        {
          provide: DataSource,
          useFactory: () =>
            openMetadataDb({
              url: config.database.url,
              pgliteDir: join(config.datadir, 'db'),
              poolSize: config.database.poolsize,
            }),
        },
        {
          provide: MetadataDb,
          inject: [DataSource],
          useFactory: (ds: DataSource) => new MetadataDb(ds, { source: { addr: eventSourceAddr(config) } }),
        },
        { provide: BLOB_STORAGE, useFactory: () => createBlobStorage(config.storage) },
        {
          provide: PullEventBuffer,
          inject: [MetadataDb],
          useFactory: (db: MetadataDb) => {
            const { enabled, flushinterval, maxbuffered } = config.notifications.pulls;
            const logger = new Logger('PullEvents');
            return new PullEventBuffer(
              db,
              { enabled, flushIntervalMs: flushinterval, maxBatch: PULL_EVENT_BATCH, maxBuffered: maxbuffered },
              (m) => logger.warn(m),
            );
          },
        },
        HealthChecks,
        MetadataDbCloser,
      ],
      exports: [LADING_CONFIG, DataSource, MetadataDb, BLOB_STORAGE, PullEventBuffer, HealthChecks],
    };
  }
}

/** Pull events per INSERT: a multi-row insert of this many takes about as long as one row. */
const PULL_EVENT_BATCH = 1000;

/** The `source.addr` of events: this host and the port it serves on, as the reference registry writes it. */
function eventSourceAddr(config: LadingConfig): string {
  const port = config.http.addr.slice(config.http.addr.lastIndexOf(':') + 1);
  return `${hostname()}:${port}`;
}
