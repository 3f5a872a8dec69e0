import type { BlobStorage } from './blob-storage.port';
import { FilesystemBlobStorage } from './filesystem.driver';
import { InstrumentedBlobStorage } from './instrumented.driver';
import { MemoryBlobStorage } from './memory.driver';
import { S3BlobStorage } from './s3.driver';

/**
 * The storage part of the configuration, as `storage` validates it (the reference registry's
 * keys): which driver, and that driver's settings.
 */
export type StorageDriverConfig =
  | { readonly driver: 'filesystem'; readonly filesystem: { readonly rootdirectory: string } }
  | { readonly driver: 'inmemory' }
  | {
      readonly driver: 's3';
      readonly s3: {
        readonly accesskey?: string;
        readonly secretkey?: string;
        readonly region: string;
        readonly regionendpoint?: string;
        readonly bucket: string;
        readonly rootdirectory?: string;
        readonly forcepathstyle?: boolean;
        readonly secure: boolean;
        readonly chunksize: number;
      };
    };

/** Builds the storage driver the configuration names, timed and traced ({@link InstrumentedBlobStorage}). */
export function createBlobStorage(config: StorageDriverConfig): BlobStorage {
  return new InstrumentedBlobStorage(createDriver(config));
}

function createDriver(config: StorageDriverConfig): BlobStorage {
  switch (config.driver) {
    case 'inmemory':
      return new MemoryBlobStorage();
    case 's3':
      return new S3BlobStorage({
        accessKey: config.s3.accesskey,
        secretKey: config.s3.secretkey,
        region: config.s3.region,
        regionEndpoint: config.s3.regionendpoint,
        bucket: config.s3.bucket,
        rootDirectory: config.s3.rootdirectory,
        forcePathStyle: config.s3.forcepathstyle,
        secure: config.s3.secure,
        chunkSize: config.s3.chunksize,
      });
    case 'filesystem':
      return new FilesystemBlobStorage({ rootDirectory: config.filesystem.rootdirectory });
  }
}
