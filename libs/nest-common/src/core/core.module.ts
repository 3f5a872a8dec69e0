import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { hostname } from 'node:os';
import { MetadataDb, openMetadataDb } from '@lading/metadata-db';
import { createBlobStorage } from '@lading/storage';
import type { LadingConfig } from '../config/lading.config';
import { BLOB_STORAGE, LADING_CONFIG } from './tokens';

/** Closes the database when the app stops. */
@Injectable()
class MetadataDbCloser implements OnApplicationShutdown {
  constructor(@Inject(MetadataDb) private readonly db: MetadataDb) {}
  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

/**
 * What every app wires the same way: the configuration, the metadata database (PostgreSQL when
 * `database.url` is set, else embedded PGlite under `<datadir>/db`) and the blob storage driver.
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
        MetadataDbCloser,
      ],
      exports: [LADING_CONFIG, DataSource, MetadataDb, BLOB_STORAGE],
    };
  }
}

/** The `source.addr` of events: this host and the port it serves on, as the reference registry writes it. */
function eventSourceAddr(config: LadingConfig): string {
  const port = config.http.addr.slice(config.http.addr.lastIndexOf(':') + 1);
  return `${hostname()}:${port}`;
}
