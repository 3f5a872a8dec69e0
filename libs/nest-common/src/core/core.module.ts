import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { openMetadataDb } from '@lading/metadata-db';
import { FilesystemBlobStorage, MemoryBlobStorage, type BlobStorage } from '@lading/storage';
import type { LadingConfig } from '../config/lading.config';
import { BLOB_STORAGE, LADING_CONFIG } from './tokens';

/** Closes the database when the app stops. */
@Injectable()
class MetadataDbCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/** Builds the storage driver the configuration names. */
export function createBlobStorage(config: LadingConfig): BlobStorage {
  if (config.storage.driver === 'memory') return new MemoryBlobStorage();
  return new FilesystemBlobStorage({ rootDirectory: config.storage.filesystem.rootdirectory! });
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
        { provide: BLOB_STORAGE, useFactory: () => createBlobStorage(config) },
        MetadataDbCloser,
      ],
      exports: [LADING_CONFIG, DataSource, BLOB_STORAGE],
    };
  }
}
