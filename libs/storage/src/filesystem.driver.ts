/*
 * Filesystem layout under the root directory:
 *
 *   <root>/
 *   ├── blobs/
 *   │   ├── sha256/
 *   │   │   └── ab/                       first two hex digits, so no directory grows too big
 *   │   │       └── abcdef…(64 hex)/
 *   │   │           └── data              the blob's bytes; present = committed
 *   │   └── sha512/
 *   │       └── 12/
 *   │           └── 1234…(128 hex)/
 *   │               └── data
 *   └── uploads/
 *       └── <uuid>/
 *           ├── startedat                 creation time, ISO 8601 (written first)
 *           └── data                      bytes appended so far; present = the upload exists
 *
 * Durability: appends fdatasync before they resolve; a commit renames the upload's `data` onto
 * the blob's `data` (atomic, so readers see all bytes or none) and fsyncs the directories whose
 * entries changed; `createUpload` fsyncs what it creates. `rename` replaces an existing file
 * atomically, which is what makes concurrent commits of the same digest safe: each one
 * installs identical bytes and exactly one file remains.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, opendir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { DIGEST_ALGORITHMS } from '@lading/reference';
import type { AppendOptions, BlobStat, BlobStorage, ByteRange, TruncateOptions, UploadInfo } from './blob-storage.port';
import {
  KeyedSerializer,
  checkUploadId,
  isBlobDigest,
  isUploadId,
  parseBlobDigest,
  readAppendSource,
  resolveByteRange,
} from './blob-storage.support';
import { BlobNotFoundError, UploadNotFoundError, UploadOffsetMismatchError } from './storage.error';

/** Configuration of `FilesystemBlobStorage`. */
export interface FilesystemBlobStorageOptions {
  /**
   * Directory that holds `blobs/` and `uploads/` (the reference registry's `rootdirectory`).
   * Created on first write.
   */
  rootDirectory: string;
}

const DATA = 'data';
const STARTED_AT = 'startedat';
/** A short-lived file whose mtime tells the filesystem's clock (see `truncateUpload`). */
const CLOCK_PROBE = 'clock';
/** How often a commit retries when a concurrent `deleteBlob` removes the directory it made. */
const COMMIT_ATTEMPTS = 5;
/** Read size for serving blobs: the 64 KiB default costs a syscall and a trip through JavaScript per 64 KiB. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Blob storage on a local (or network) filesystem; the embedded default. Needs a filesystem
 * with atomic `rename` and working `fsync` (any local Linux filesystem). Safe to share one root
 * between processes for blobs; appends to one upload are serialised only within one instance.
 * Other I/O errors (EACCES, ENOSPC, EIO) propagate as Node errors.
 */
export class FilesystemBlobStorage implements BlobStorage {
  /** {@inheritDoc BlobStorage.driverName} */
  readonly driverName = 'filesystem';
  private readonly root: string;
  private readonly uploadLocks = new KeyedSerializer();
  private probeCount = 0;

  /** Uses `options.rootDirectory`; touches nothing until the first call. */
  constructor(options: FilesystemBlobStorageOptions) {
    this.root = resolve(options.rootDirectory);
  }

  /** {@inheritDoc BlobReader.statBlob} */
  async statBlob(digest: string): Promise<BlobStat | null> {
    const stats = await statOrNull(this.blobDataPath(digest));
    return stats ? { size: stats.size } : null;
  }

  /** {@inheritDoc BlobReader.readBlob} */
  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const handle = await openOrNull(this.blobDataPath(digest), 'r');
    if (!handle) {
      throw new BlobNotFoundError(digest);
    }
    return streamFile(handle, range);
  }

  /** {@inheritDoc BlobDeleter.deleteBlob} */
  async deleteBlob(digest: string): Promise<void> {
    const data = this.blobDataPath(digest);
    const blobDir = dirname(data);
    await ignoreMissing(unlink(data));
    await fsyncDirectory(blobDir);
    // The directory may be non-empty again if a commit of the same digest got in between.
    await ignoreErrors(rmdir(blobDir), ['ENOENT', 'ENOTEMPTY', 'EEXIST']);
    await fsyncDirectory(dirname(blobDir));
  }

  /** {@inheritDoc StorageEnumerator.listBlobs} */
  async *listBlobs(): AsyncIterable<string> {
    for (const algorithm of DIGEST_ALGORITHMS) {
      const algorithmDir = join(this.root, 'blobs', algorithm);
      for await (const prefix of directoryNames(algorithmDir)) {
        for await (const hex of directoryNames(join(algorithmDir, prefix))) {
          const digest = `${algorithm}:${hex}`;
          if (
            hex.startsWith(prefix) &&
            isBlobDigest(digest) &&
            (await statOrNull(join(algorithmDir, prefix, hex, DATA)))
          ) {
            yield digest;
          }
        }
      }
    }
  }

  /** {@inheritDoc BlobIngester.createUpload} */
  async createUpload(id: string): Promise<void> {
    const uploadDir = this.uploadDir(id);
    await mkdirDurable(uploadDir);
    // startedat goes first: an upload dir without `data` is a creation cut short, which
    // listUploads still reports so that it gets purged.
    const startedAt = await openOrNull(join(uploadDir, STARTED_AT), 'wx', ['EEXIST']);
    if (startedAt) {
      await withHandle(startedAt, async (handle) => {
        await handle.writeFile(new Date().toISOString());
        await handle.sync();
      });
    }
    const data = await open(join(uploadDir, DATA), fsConstants.O_WRONLY | fsConstants.O_CREAT);
    await withHandle(data, (handle) => handle.sync());
    await fsyncDirectory(uploadDir);
  }

  /** {@inheritDoc BlobIngester.uploadSize} */
  async uploadSize(id: string): Promise<number | null> {
    const stats = await statOrNull(this.uploadDataPath(id));
    return stats ? stats.size : null;
  }

  /** {@inheritDoc BlobIngester.appendUpload} */
  async appendUpload(
    id: string,
    offset: number,
    source: AsyncIterable<Buffer | Uint8Array>,
    options: AppendOptions = {},
  ): Promise<number> {
    const path = this.uploadDataPath(id);
    return this.uploadLocks.run(id, async () => {
      const handle = await openOrNull(path, 'r+');
      if (!handle) {
        throw new UploadNotFoundError(id);
      }
      return withHandle(handle, async () => {
        const { size } = await handle.stat();
        if (size !== offset) {
          throw new UploadOffsetMismatchError(id, offset, size);
        }
        let position = offset;
        try {
          for await (const chunk of readAppendSource(source, options.signal)) {
            await writeFully(handle, chunk, position);
            position += chunk.length;
            options.onData?.(chunk);
          }
          await handle.datasync();
          return position;
        } catch (error) {
          // A failed write may have stored part of a chunk past `position`: always cut back.
          try {
            await handle.truncate(offset);
            await handle.datasync();
          } catch (truncateError) {
            throw new AggregateError([error, truncateError], `append to upload ${id} failed and could not be undone`);
          }
          throw error;
        }
      });
    });
  }

  /** {@inheritDoc BlobIngester.truncateUpload} */
  async truncateUpload(id: string, size: number, options: TruncateOptions = {}): Promise<number> {
    const path = this.uploadDataPath(id);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`cannot truncate upload ${id} to ${size} bytes`);
    }
    return this.uploadLocks.run(id, async () => {
      const handle = await openOrNull(path, 'r+');
      if (!handle) {
        throw new UploadNotFoundError(id);
      }
      return withHandle(handle, async () => {
        const stats = await handle.stat();
        if (stats.size < size) {
          throw new UploadOffsetMismatchError(id, size, stats.size);
        }
        if (stats.size === size) {
          return stats.size;
        }
        // mtime moves with every write of a running append, in any process sharing the root. Its
        // age is measured against the filesystem's own clock (a file touched now), never the
        // process clock: the two disagree, and a file's mtime is often ahead of Date.now().
        const unchangedFor = options.unchangedFor ?? 0;
        if (unchangedFor > 0 && (await this.filesystemNow(id)) - stats.mtimeMs < unchangedFor) {
          return stats.size;
        }
        await handle.truncate(size);
        await handle.datasync();
        return size;
      });
    });
  }

  /** {@inheritDoc BlobIngester.readUpload} */
  async readUpload(id: string, range?: ByteRange): Promise<Readable> {
    const handle = await openOrNull(this.uploadDataPath(id), 'r');
    if (!handle) {
      throw new UploadNotFoundError(id);
    }
    return streamFile(handle, range);
  }

  /** {@inheritDoc BlobIngester.commitUpload} */
  async commitUpload(id: string, digest: string): Promise<void> {
    const source = this.uploadDataPath(id);
    const target = this.blobDataPath(digest);
    const blobDir = dirname(target);
    await this.uploadLocks.run(id, async () => {
      const handle = await openOrNull(source, 'r');
      if (!handle) {
        throw new UploadNotFoundError(id);
      }
      // Appends already synced; this covers bytes left by an append that a crash interrupted.
      const { size } = await withHandle(handle, async () => {
        await handle.datasync();
        return handle.stat();
      });
      const existing = await statOrNull(target);
      // A blob of another size under the same digest is damaged; the verified upload replaces it.
      if (existing?.size !== size) {
        await this.installBlob(id, source, target);
        await fsyncDirectory(blobDir);
      }
      await rm(this.uploadDir(id), { recursive: true, force: true });
    });
  }

  /** {@inheritDoc BlobIngester.deleteUpload} */
  async deleteUpload(id: string): Promise<void> {
    await rm(this.uploadDir(id), { recursive: true, force: true });
  }

  /** {@inheritDoc StorageEnumerator.listUploads} */
  async *listUploads(): AsyncIterable<UploadInfo> {
    const uploadsDir = join(this.root, 'uploads');
    for await (const id of directoryNames(uploadsDir)) {
      if (!isUploadId(id)) {
        continue;
      }
      const uploadDir = join(uploadsDir, id);
      const dirStats = await statOrNull(uploadDir);
      if (!dirStats) {
        continue;
      }
      const dataStats = await statOrNull(join(uploadDir, DATA));
      const startedAt = await readStartedAt(join(uploadDir, STARTED_AT));
      yield {
        id,
        size: dataStats?.size ?? 0,
        startedAt: startedAt ?? new Date(dirStats.mtimeMs),
      };
    }
  }

  private async installBlob(id: string, source: string, target: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdirDurable(dirname(target));
        await rename(source, target);
        return;
      } catch (error) {
        if (!hasCode(error, ['ENOENT'])) {
          throw error;
        }
        if (!(await statOrNull(source))) {
          throw new UploadNotFoundError(id);
        }
        // A concurrent deleteBlob removed the directory while mkdir checked it or before rename.
        if (attempt >= COMMIT_ATTEMPTS) {
          throw error;
        }
      }
    }
  }

  private blobDataPath(digest: string): string {
    const { algorithm, hex } = parseBlobDigest(digest);
    return join(this.root, 'blobs', algorithm, hex.slice(0, 2), hex, DATA);
  }

  /** The filesystem's clock, in ms: the mtime of a probe file written now beside the upload. */
  private async filesystemNow(id: string): Promise<number> {
    const probe = join(this.uploadDir(id), `${CLOCK_PROBE}.${process.pid}.${++this.probeCount}`);
    const handle = await open(probe, 'w');
    try {
      await handle.write(Buffer.from('t'));
      return (await handle.stat()).mtimeMs;
    } finally {
      await handle.close();
      await ignoreMissing(unlink(probe));
    }
  }

  private uploadDir(id: string): string {
    return join(this.root, 'uploads', checkUploadId(id));
  }

  private uploadDataPath(id: string): string {
    return join(this.uploadDir(id), DATA);
  }
}

/** Streams `range` of the open file (closing it when done); the size is taken now. */
async function streamFile(handle: FileHandle, range: ByteRange | undefined): Promise<Readable> {
  let bounds: ByteRange;
  try {
    bounds = resolveByteRange(range, (await handle.stat()).size);
  } catch (error) {
    await handle.close();
    throw error;
  }
  if (bounds.end < bounds.start) {
    await handle.close();
    return Readable.from([], { objectMode: false });
  }
  // 1 MiB reads: a 64 KiB default costs a syscall and a trip through JavaScript per 64 KiB served.
  return handle.createReadStream({ start: bounds.start, end: bounds.end, highWaterMark: READ_CHUNK_BYTES });
}

async function writeFully(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
    written += bytesWritten;
  }
}

/** Creates `dir` and its missing parents, and fsyncs every directory that gained an entry. */
async function mkdirDurable(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true });
  if (firstCreated === undefined) {
    return;
  }
  const changed: string[] = [];
  for (let current = dir; current !== dirname(firstCreated); current = dirname(current)) {
    changed.push(dirname(current));
  }
  for (const changedDir of changed.reverse()) {
    await fsyncDirectory(changedDir);
  }
}

/** Makes the directory's entries durable; a missing directory has nothing to sync. */
async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await openOrNull(dir, 'r');
  if (handle) {
    // Some platforms cannot fsync a directory (EISDIR, EINVAL); there is nothing more to do.
    await withHandle(handle, (h) => ignoreErrors(h.sync(), ['EISDIR', 'EINVAL', 'EPERM', 'EBADF']));
  }
}

async function withHandle<T>(handle: FileHandle, use: (handle: FileHandle) => Promise<T>): Promise<T> {
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

async function* directoryNames(dir: string): AsyncIterable<string> {
  let entries;
  try {
    entries = await opendir(dir);
  } catch (error) {
    if (hasCode(error, ['ENOENT', 'ENOTDIR'])) {
      return;
    }
    throw error;
  }
  for await (const entry of entries) {
    if (entry.isDirectory()) {
      yield entry.name;
    }
  }
}

async function readStartedAt(path: string): Promise<Date | null> {
  try {
    const date = new Date((await readFile(path, 'utf8')).trim());
    return Number.isNaN(date.getTime()) ? null : date;
  } catch (error) {
    if (hasCode(error, ['ENOENT', 'ENOTDIR'])) {
      return null;
    }
    throw error;
  }
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    if (hasCode(error, ['ENOENT', 'ENOTDIR'])) {
      return null;
    }
    throw error;
  }
}

async function openOrNull(
  path: string,
  flags: string,
  absentCodes: readonly string[] = ['ENOENT', 'ENOTDIR'],
): Promise<FileHandle | null> {
  try {
    return await open(path, flags);
  } catch (error) {
    if (hasCode(error, absentCodes)) {
      return null;
    }
    throw error;
  }
}

async function ignoreMissing(operation: Promise<unknown>): Promise<void> {
  await ignoreErrors(operation, ['ENOENT', 'ENOTDIR']);
}

async function ignoreErrors(operation: Promise<unknown>, codes: readonly string[]): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!hasCode(error, codes)) {
      throw error;
    }
  }
}

// Structural, not `instanceof Error`: errors from Node's fs may come from another realm (Jest).
function hasCode(error: unknown, codes: readonly string[]): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && codes.includes(code);
}
