import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FilesystemBlobStorage, InstrumentedBlobStorage, MemoryBlobStorage } from '@lading/storage';
import { describeBlobStorageDriver } from './blob-storage.suite';
import { recordSpans } from './tracing';

/** Every file under `root`, as a `/`-separated path relative to it (empty directories are not leftovers). */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

describeBlobStorageDriver('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lading-storage-'));
  return {
    storage: new FilesystemBlobStorage({ rootDirectory: root }),
    leftovers: () => filesUnder(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describeBlobStorageDriver('memory', async () => {
  const storage = new MemoryBlobStorage();
  return { storage, leftovers: async () => storage.keys(), cleanup: async () => undefined };
});

// The S3 part size, so that staging (merging small writes into a part) runs in the unit tier too.
describeBlobStorageDriver('memory, staging parts below 5 MiB', async () => {
  const storage = new MemoryBlobStorage({ minPartSize: 5 * 1024 * 1024 });
  return { storage, leftovers: async () => storage.keys(), cleanup: async () => undefined };
});

// The decorator every app's driver is wrapped in, with tracing on (its spans and byte counting run):
// it must keep the driver's contract whole.
const spans = recordSpans();
describeBlobStorageDriver('filesystem, instrumented and traced', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lading-storage-'));
  return {
    storage: new InstrumentedBlobStorage(new FilesystemBlobStorage({ rootDirectory: root })),
    leftovers: () => filesUnder(root),
    cleanup: async () => {
      await rm(root, { recursive: true, force: true });
      spans.reset();
    },
  };
});
