/*
 * Blob storage on a filesystem, under the keys of `storage.layout.ts` (a key's `/` separated
 * names become directories under the root).
 *
 * Durability: a part is written to its own new file and fdatasynced, and its directory fsynced,
 * before `writePart` resolves; a commit renames one file onto the blob's `data` (atomic, so
 * readers see all bytes or none) and fsyncs the directories whose entries changed. An upload of
 * several parts is first concatenated into one new part file (the filesystem has no server-side
 * compose; one copy, streamed). `rename` replaces an existing file atomically, which is what
 * makes concurrent commits of the same digest safe: each installs identical bytes and exactly
 * one file remains.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, opendir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { finished, type Writable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { DIGEST_ALGORITHMS } from '@lading/reference';
import type {
  BlobInfo,
  BlobStat,
  BlobStorage,
  ByteRange,
  SendableBlobStream,
  UploadInfo,
  UploadPart,
  WritePartOptions,
  WritePartResult,
} from './blob-storage.port';
import {
  concatStreams,
  digestsOf,
  isBlobDigest,
  isUploadId,
  planPartWrite,
  resolveByteRange,
  sizeOfParts,
  slicesOf,
  withStagedBytes,
} from './blob-storage.support';
import { writeThroughSlabs, type PositionalWrite } from './slab-writer';
import { blobDataKey, clockProbeKey, uploadPartKey, uploadPrefix, uploadStartedAtKey } from './storage.layout';
import { BlobNotFoundError, UploadNotFoundError } from './storage.error';

/** Configuration of `FilesystemBlobStorage`. */
export interface FilesystemBlobStorageOptions {
  /**
   * Directory that holds `blobs/` and `uploads/` (the reference registry's `rootdirectory`).
   * Created on first write.
   */
  rootDirectory: string;
}

const DATA = 'data';
/** How often a commit retries when a concurrent `deleteBlob` removes the directory it made. */
const COMMIT_ATTEMPTS = 5;
/** Read size for serving blobs: the 64 KiB default costs a syscall and a trip through JavaScript per 64 KiB. */
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Reads a blob send keeps in flight, each into one of as many buffers of READ_CHUNK_BYTES, reused:
 * 8 MiB per transfer at most. With one read at a time (a stream), the socket waits for every read
 * and every read for the socket; with several, both stay busy.
 */
const SEND_BUFFERS = 8;
/** While an upload part is written, its bytes are flushed to disk every this many (see writePartFile). */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;
/** Blob removals a batch runs at once. */
const FS_DELETE_CONCURRENCY = 16;

/**
 * Blob storage on a local (or network) filesystem; the embedded default. Needs a filesystem
 * with atomic `rename` and working `fsync` (any local Linux filesystem). Safe to share one root
 * between processes. Other I/O errors (EACCES, ENOSPC, EIO) propagate as Node errors.
 */
export class FilesystemBlobStorage implements BlobStorage {
  /** {@inheritDoc BlobStorage.driverName} */
  readonly driverName = 'filesystem';
  /** {@inheritDoc UploadStore.minPartSize} */
  readonly minPartSize = 0;
  private readonly root: string;

  /** Uses `options.rootDirectory`; touches nothing until the first call. */
  constructor(options: FilesystemBlobStorageOptions) {
    this.root = resolve(options.rootDirectory);
  }

  /** {@inheritDoc BlobReader.statBlob} */
  async statBlob(digest: string): Promise<BlobStat | null> {
    const stats = await statOrNull(this.path(blobDataKey(digest)));
    return stats ? { size: stats.size } : null;
  }

  /** {@inheritDoc BlobReader.readBlob} */
  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const handle = await openOrNull(this.path(blobDataKey(digest)), 'r');
    if (!handle) {
      throw new BlobNotFoundError(digest);
    }
    return streamFile(handle, range);
  }

  /** {@inheritDoc BlobDeleter.deleteBlob} */
  async deleteBlob(digest: string): Promise<void> {
    const data = this.path(blobDataKey(digest));
    const blobDir = dirname(data);
    await ignoreMissing(unlink(data));
    await fsyncDirectory(blobDir);
    // The directory may be non-empty again if a commit of the same digest got in between.
    await ignoreErrors(rmdir(blobDir), ['ENOENT', 'ENOTEMPTY', 'EEXIST']);
    await fsyncDirectory(dirname(blobDir));
  }

  /** {@inheritDoc BlobDeleter.deleteBlobs} */
  async deleteBlobs(digests: readonly string[]): Promise<void> {
    const blobDirs = digests.map((d) => dirname(this.path(blobDataKey(d)))); // every key checked before any removal
    const parents = new Set<string>();
    await forEachConcurrently(blobDirs, FS_DELETE_CONCURRENCY, async (blobDir) => {
      await ignoreMissing(unlink(join(blobDir, DATA)));
      // Removed, the directory takes the unlink with it. Still there (a commit of the same digest
      // got in between), it is fsynced as deleteBlob does.
      const kept = await rmdir(blobDir).then(
        () => false,
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return false;
          if (e.code === 'ENOTEMPTY' || e.code === 'EEXIST') return true;
          throw e;
        },
      );
      if (kept) await fsyncDirectory(blobDir);
      parents.add(dirname(blobDir));
    });
    // One fsync per parent directory (at most 256 per algorithm), not two per blob: in a batch of
    // hundreds, the fsyncs were most of the time a removal took.
    await forEachConcurrently([...parents], FS_DELETE_CONCURRENCY, fsyncDirectory);
  }

  /** {@inheritDoc StorageEnumerator.listBlobs} */
  listBlobs(): AsyncIterable<string> {
    return digestsOf(this.listBlobInfo());
  }

  /** {@inheritDoc StorageEnumerator.listBlobInfo} */
  async *listBlobInfo(): AsyncIterable<BlobInfo> {
    // Sorted level by level (algorithm, first two hex digits, hex): that is digest order, and
    // only one directory's names are held at a time.
    for (const algorithm of [...DIGEST_ALGORITHMS].sort()) {
      const algorithmDir = join(this.root, 'blobs', algorithm);
      for (const prefix of await sortedDirectoryNames(algorithmDir)) {
        for (const hex of await sortedDirectoryNames(join(algorithmDir, prefix))) {
          const digest = `${algorithm}:${hex}`;
          if (!hex.startsWith(prefix) || !isBlobDigest(digest)) continue;
          const stats = await statOrNull(join(algorithmDir, prefix, hex, DATA));
          if (stats) yield { digest, size: stats.size, modified: placedAt(stats) };
        }
      }
    }
  }

  /** {@inheritDoc StorageEnumerator.currentTime} */
  async currentTime(): Promise<Date> {
    const probe = this.path(clockProbeKey(randomUUID()));
    await mkdir(dirname(probe), { recursive: true });
    try {
      await (await open(probe, 'wx')).close();
      return placedAt(await stat(probe));
    } finally {
      await ignoreMissing(unlink(probe));
      await ignoreErrors(rmdir(dirname(probe)), ['ENOENT', 'ENOTEMPTY', 'EEXIST']);
    }
  }

  /** {@inheritDoc UploadStore.createUpload} */
  async createUpload(id: string): Promise<void> {
    const marker = this.path(uploadStartedAtKey(id));
    await mkdirDurable(join(dirname(marker), 'parts'));
    if (await statOrNull(marker)) return;
    // Written under a temporary name and renamed: a marker is whole or absent.
    const temporary = `${marker}.${randomUUID()}`;
    await withHandle(await open(temporary, 'wx'), async (handle) => {
      await handle.writeFile(new Date().toISOString());
      await handle.sync();
    });
    await rename(temporary, marker);
    await fsyncDirectory(dirname(marker));
  }

  /** {@inheritDoc UploadStore.uploadExists} */
  async uploadExists(id: string): Promise<boolean> {
    return (await statOrNull(this.path(uploadStartedAtKey(id)))) !== null;
  }

  /** {@inheritDoc UploadStore.writePart} */
  async writePart(
    id: string,
    parts: readonly UploadPart[],
    source: AsyncIterable<Buffer | Uint8Array>,
    options: WritePartOptions = {},
  ): Promise<WritePartResult> {
    const { keep, staged } = planPartWrite(parts, this.minPartSize);
    if (!(await this.uploadExists(id))) throw new UploadNotFoundError(id);
    const stagedBytes = staged ? await this.readUpload(id, [staged]) : undefined;
    const part = await this.writePartFile(id, withStagedBytes(stagedBytes, source, options));
    const all = [...keep, part];
    return { parts: all, size: sizeOfParts(all), superseded: staged ? [staged] : [] };
  }

  /** {@inheritDoc UploadStore.readUpload} */
  async readUpload(id: string, parts: readonly UploadPart[], range?: ByteRange): Promise<Readable> {
    uploadPrefix(id);
    const bounds = resolveByteRange(range, sizeOfParts(parts));
    const slices = slicesOf(parts, bounds);
    // Open every part now: a missing one is UploadNotFoundError before any byte is read.
    const handles: FileHandle[] = [];
    try {
      for (const slice of slices) {
        const handle = await openOrNull(this.path(uploadPartKey(id, slice.part.name)), 'r');
        if (!handle) throw new UploadNotFoundError(id);
        handles.push(handle);
      }
    } catch (error) {
      await Promise.all(handles.map((h) => h.close()));
      throw error;
    }
    return concatStreams(
      slices.map((slice, i) => async () =>
        handles[i].createReadStream({ start: slice.start, end: slice.end, highWaterMark: READ_CHUNK_BYTES }),
      ),
    );
  }

  /** {@inheritDoc UploadStore.commitUpload} */
  async commitUpload(id: string, parts: readonly UploadPart[], digest: string): Promise<void> {
    uploadPrefix(id);
    const target = this.path(blobDataKey(digest));
    for (const part of parts) uploadPartKey(id, part.name);
    const size = sizeOfParts(parts);
    const existing = await statOrNull(target);
    // A blob of another size under the same digest is damaged; the verified upload replaces it.
    if (existing?.size !== size) {
      const single = parts.length === 1 ? parts[0] : await this.concatenate(id, parts);
      const source = this.path(uploadPartKey(id, single.name));
      if ((await statOrNull(source))?.size !== single.size) throw new UploadNotFoundError(id);
      await this.installBlob(id, source, target);
      await fsyncDirectory(dirname(target));
    }
    await this.deleteUpload(id);
  }

  /** {@inheritDoc UploadStore.deleteParts} */
  async deleteParts(id: string, parts: readonly UploadPart[]): Promise<void> {
    uploadPrefix(id);
    for (const part of parts) await ignoreMissing(unlink(this.path(uploadPartKey(id, part.name))));
  }

  /** {@inheritDoc UploadStore.deleteUpload} */
  async deleteUpload(id: string): Promise<void> {
    await rm(this.path(uploadPrefix(id)), { recursive: true, force: true });
  }

  /** {@inheritDoc StorageEnumerator.listUploads} */
  async *listUploads(): AsyncIterable<UploadInfo> {
    const uploadsDir = join(this.root, 'uploads');
    for await (const id of directoryNames(uploadsDir)) {
      if (!isUploadId(id)) {
        continue;
      }
      if (!(await statOrNull(join(uploadsDir, id)))) continue;
      yield { id, startedAt: await readStartedAt(this.path(uploadStartedAtKey(id))) };
    }
  }

  /** Writes a new part file from `bytes`, durably; removes it if anything fails. */
  private async writePartFile(id: string, bytes: AsyncIterable<Buffer>): Promise<UploadPart> {
    const name = randomUUID();
    const path = this.path(uploadPartKey(id, name));
    let handle: FileHandle;
    try {
      handle = await open(path, 'wx');
    } catch (error) {
      if (hasCode(error, ['ENOENT', 'ENOTDIR'])) throw new UploadNotFoundError(id);
      throw error;
    }
    let size = 0;
    try {
      await withHandle(handle, async () => {
        // The kernel starts writing dirty pages back only at 10 % of memory or after 30 s, so a
        // large part would be written to disk only by the closing datasync, after the last byte
        // arrived: the client waited for the network, then for the disk. A datasync started every
        // SYNC_EVERY_BYTES (one at a time, not awaited) writes back while the bytes still arrive,
        // and leaves the closing one little to do.
        let syncing: Promise<void> | undefined;
        // An early datasync's failure is kept and thrown: Linux reports a writeback error to one
        // fsync only, so the closing one could succeed over lost pages.
        let syncFailed: { error: unknown } | undefined;
        let synced = 0;
        try {
          const write: PositionalWrite = async (buffer, offset, length, position) =>
            (await handle.write(buffer, offset, length, position)).bytesWritten;
          size = await writeThroughSlabs(bytes, write, 0, (written) => {
            if (written - synced < SYNC_EVERY_BYTES || syncing) return;
            synced = written;
            syncing = handle
              .datasync()
              .catch((error: unknown) => void (syncFailed ??= { error }))
              .finally(() => (syncing = undefined));
          });
        } finally {
          await syncing; // settled before the handle closes, whatever happened (it never rejects)
        }
        if (syncFailed) throw syncFailed.error;
        await handle.datasync();
      });
      await fsyncDirectory(dirname(path));
    } catch (error) {
      await ignoreMissing(unlink(path));
      throw error;
    }
    return { name, size };
  }

  /** Copies the parts, in order, into one new part (there is no server-side compose here). */
  private async concatenate(id: string, parts: readonly UploadPart[]): Promise<UploadPart> {
    const bytes = parts.length === 0 ? undefined : await this.readUpload(id, parts);
    return this.writePartFile(id, bytes ?? emptySource());
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

  /** The path of a layout key under the root. */
  private path(key: string): string {
    return join(this.root, ...key.split('/').filter((s) => s !== ''));
  }
}

async function* emptySource(): AsyncGenerator<Buffer> {
  return;
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
  return new FileRangeStream(handle, bounds);
}

/**
 * The bytes `bounds` of an open file, which it owns (closed when the stream is destroyed or
 * ends). Read as a stream, 1 MiB at a time into new buffers (a 64 KiB default costs a syscall and
 * a trip through JavaScript per 64 KiB served); sent with `sendTo`, see sendRange.
 */
class FileRangeStream extends Readable implements SendableBlobStream {
  private position: number;
  private readStarted = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly bounds: ByteRange,
  ) {
    super({ highWaterMark: READ_CHUNK_BYTES });
    this.position = bounds.start;
  }

  override _read(): void {
    this.readStarted = true;
    const length = Math.min(READ_CHUNK_BYTES, this.bounds.end - this.position + 1);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(length);
    readFully(this.handle, buffer, length, this.position).then(
      () => {
        this.position += length;
        this.push(buffer);
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      (closeError: unknown) => callback(error ?? (closeError as Error)),
    );
  }

  /** {@inheritDoc SendableBlobStream.sendTo} */
  async sendTo(target: Writable, onChunk?: (bytes: number) => void): Promise<void> {
    if (this.readStarted || this.destroyed) throw new Error('sendTo on a blob stream that was read already');
    try {
      await sendRange(this.handle, { start: this.position, end: this.bounds.end }, target, onChunk);
    } finally {
      this.destroy();
    }
  }
}

/**
 * Writes `bounds` of the file to `target` and ends it, with up to SEND_BUFFERS reads in flight,
 * each into its own buffer, written in file order as soon as it and the ones before it are read;
 * a buffer is read into again once `target` has passed it on (its write callback: the socket has
 * it), so at most SEND_BUFFERS buffers exist and `target` never queues more than they hold,
 * whatever `write()` returns. When `target` closes or fails first, no read is started any more,
 * the ones in flight are awaited (the caller closes the file after) and the error is thrown.
 */
async function sendRange(handle: FileHandle, bounds: ByteRange, target: Writable, onChunk?: (bytes: number) => void): Promise<void> {
  const total = bounds.end - bounds.start + 1;
  const size = Math.min(READ_CHUNK_BYTES, total);
  const free: Buffer[] = Array.from({ length: Math.min(SEND_BUFFERS, Math.ceil(total / size)) }, () => Buffer.allocUnsafeSlow(size));
  const reads: Promise<{ buffer: Buffer; length: number }>[] = [];
  let next = bounds.start;
  let ending = false;
  let stopped: { error: Error } | undefined;
  let wake: (() => void) | undefined;
  let targetDone!: () => void;
  const whenTargetDone = new Promise<void>((ok) => (targetDone = ok));
  const unwatch = finished(target, (error) => {
    if (error || !ending) stopped ??= { error: error ?? prematureClose() };
    targetDone();
    wake?.();
  });
  const readMore = (): void => {
    while (!stopped && free.length > 0 && next <= bounds.end) {
      const buffer = free.pop()!;
      const length = Math.min(buffer.length, bounds.end - next + 1);
      reads.push(readFully(handle, buffer, length, next).then(() => ({ buffer, length })));
      next += length;
    }
  };
  try {
    for (readMore(); !stopped && (reads.length > 0 || next <= bounds.end); readMore()) {
      if (reads.length === 0) {
        // Every buffer is with target: wait for one back (or for target to go).
        await new Promise<void>((ok) => (wake = ok));
        wake = undefined;
        continue;
      }
      const { buffer, length } = await reads[0]!;
      reads.shift();
      // A destination destroyed meanwhile says so on a later tick (finished() above); reads that
      // were done already would otherwise all be handed to it first.
      if (!stopped && target.destroyed) stopped = { error: prematureClose() };
      if (stopped) break;
      target.write(length === buffer.length ? buffer : buffer.subarray(0, length), () => {
        free.push(buffer);
        readMore();
        wake?.();
      });
      onChunk?.(length);
    }
    if (stopped) throw stopped.error;
    ending = true;
    target.end();
    await whenTargetDone;
    if (stopped) throw (stopped as { error: Error }).error;
  } catch (error) {
    stopped ??= { error: error as Error };
    // Without the error: the caller has it from the rejection, and an `error` event would be
    // unhandled on a destination nobody else listens to (finished() stops listening below).
    if (!target.destroyed) target.destroy();
    throw error;
  } finally {
    unwatch();
    await Promise.allSettled(reads);
  }
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** Reads exactly `length` bytes at `position` into `buffer`; a file that ends first is an error. */
async function readFully(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`the blob file ended at byte ${position + done}, before its size when opened`);
    done += bytesRead;
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

/**
 * When a file took its place, by the filesystem's clock: its status-change time, which a rename
 * (a commit) sets, unlike the modification time, which a blob's bytes keep from the part they
 * were written as (the later of the two, should a tool have set the modification time ahead).
 */
function placedAt(stats: Stats): Date {
  return new Date(Math.max(stats.ctimeMs, stats.mtimeMs));
}

/** The names of the directories in `dir`, sorted by character code; none when it does not exist. */
async function sortedDirectoryNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const name of directoryNames(dir)) names.push(name);
  return names.sort();
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

/** Runs `work` on every item, at most `concurrency` at a time; rejects with the first failure. */
async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const pending = [...items];
  const worker = async (): Promise<void> => {
    for (let item = pending.pop(); item !== undefined; item = pending.pop()) await work(item);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, pending.length) }, worker));
}
