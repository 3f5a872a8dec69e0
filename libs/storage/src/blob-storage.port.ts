import type { Readable } from 'node:stream';

/** An inclusive byte range, as in an HTTP `Range: bytes=start-end` header. */
export interface ByteRange {
  /** First byte, zero-based. */
  start: number;
  /** Last byte, inclusive. A value past the last byte is clamped to it. */
  end: number;
}

/** What storage knows about a committed blob. */
export interface BlobStat {
  /** Size in bytes. */
  size: number;
}

/** Options of `BlobIngester.appendUpload`. */
export interface AppendOptions {
  /**
   * Called with every chunk, in order, as it is written; the caller hashes in the same pass.
   * If it throws, the append fails like a failing source (the upload is truncated back).
   */
  onData?: (chunk: Buffer) => void;
  /** Aborting stops the append even while the source is stalled; it rejects with the reason. */
  signal?: AbortSignal;
}

/** Options of `BlobIngester.truncateUpload`. */
export interface TruncateOptions {
  /**
   * Cut only if the upload's bytes have not changed for at least this many milliseconds, as the
   * storage's own clock tells (never the process clock, which storage timestamps do not follow).
   */
  unchangedFor?: number;
}

/** An upload in progress, as listed for purging stale uploads. */
export interface UploadInfo {
  /** The upload id (a lowercase uuid). */
  id: string;
  /** Bytes stored so far. */
  size: number;
  /**
   * When the upload was created, by the creating process's clock (recorded, not a file time, so
   * it compares with another process's clock without a filesystem's timestamps in between).
   */
  startedAt: Date;
}

/** Reads committed blobs. */
export interface BlobReader {
  /**
   * The blob's size, or `null` when `digest` is not stored.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  statBlob(digest: string): Promise<BlobStat | null>;

  /**
   * Streams the blob's bytes, or the inclusive `range` of them (`end` clamped to the last
   * byte). The stream is opened before the promise resolves, so a blob deleted meanwhile
   * still reads whole.
   * @throws BlobNotFoundError when `digest` is not stored.
   * @throws RangeNotSatisfiableError when `range` starts at or past the end, or is malformed.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  readBlob(digest: string, range?: ByteRange): Promise<Readable>;
}

/** Deletes committed blobs (garbage collection). */
export interface BlobDeleter {
  /**
   * Removes the blob; resolves as well when it was not there (idempotent). Readers that have
   * already opened it may finish.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  deleteBlob(digest: string): Promise<void>;
}

/**
 * Writes blobs through resumable uploads: create, append at known offsets, commit under the
 * verified digest. The driver never checks the digest: the caller hashes the bytes (through
 * `onData`, or `readUpload` after a restart) and commits only what it verified.
 *
 * Appends to one upload are serialised within one driver instance; callers in different
 * processes must not append to the same upload at once (the upload session in the database
 * is the lock).
 */
export interface BlobIngester {
  /**
   * Creates an empty upload `id`, durably. Idempotent: if it exists already it is left as it is.
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  createUpload(id: string): Promise<void>;

  /**
   * Bytes stored in the upload, or `null` when it does not exist. After a crash it may count
   * bytes of an append that never resolved (see `truncateUpload`).
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  uploadSize(id: string): Promise<number | null>;

  /**
   * Writes the source's bytes at exactly `offset` and resolves with the new size once they are
   * durable. Streams with bounded memory, calling `options.onData` with each chunk as it is
   * written. If the source throws, `onData` throws, `options.signal` aborts, or a write fails,
   * the upload is truncated back to `offset` and the error is rethrown: nothing partial
   * remains. When it stops early the source is closed with `return()`, as a `for await` loop
   * does (for a Node stream that destroys it; pass `stream.iterator({ destroyOnReturn: false })`
   * to keep it open).
   * @throws UploadNotFoundError when the upload does not exist.
   * @throws UploadOffsetMismatchError when `offset` is not the upload's size (nothing written).
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  appendUpload(
    id: string,
    offset: number,
    source: AsyncIterable<Buffer | Uint8Array>,
    options?: AppendOptions,
  ): Promise<number>;

  /**
   * Cuts the upload back to its first `size` bytes, durably, and resolves with the upload's size
   * afterwards. For bytes past what the caller committed: an append that a crash or `kill -9`
   * interrupted never truncated them away, so the upload may hold a tail nobody verified.
   *
   * A tail may also belong to an append still running in another process, and cutting under a
   * live append lets its later writes land in the bytes that follow. So with
   * `options.unchangedFor` (ms) the cut happens only if the upload's bytes have not changed for
   * at least that long; otherwise nothing changes and it resolves with the current, larger size.
   * That is safe when every append is abandoned (and truncated back) after stalling for less
   * than `unchangedFor`: a tail that old has no live writer. Cutting to the current size is a
   * no-op.
   * @throws UploadNotFoundError when the upload does not exist.
   * @throws UploadOffsetMismatchError when the upload holds fewer than `size` bytes (nothing changed).
   * @throws RangeError when `size` is not a non-negative integer.
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  truncateUpload(id: string, size: number, options?: TruncateOptions): Promise<number>;

  /**
   * Streams the upload's bytes (or the inclusive `range` of them) as they are when called, e.g.
   * to re-hash them after a restart. Do not call it while an append to the same upload runs.
   * @throws UploadNotFoundError when the upload does not exist.
   * @throws RangeNotSatisfiableError when `range` starts at or past the end, or is malformed.
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  readUpload(id: string, range?: ByteRange): Promise<Readable>;

  /**
   * Atomically makes the upload's bytes the blob `digest` and removes the upload; durable
   * when it resolves. Readers see the whole blob or no blob. If the blob exists already the
   * upload is just discarded, so concurrent commits of the same content all succeed and leave
   * one copy.
   * @throws UploadNotFoundError when the upload does not exist.
   * @throws InvalidStorageKeyError when `id` or `digest` is not canonical.
   */
  commitUpload(id: string, digest: string): Promise<void>;

  /**
   * Removes the upload and its bytes; resolves as well when it was not there (idempotent).
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  deleteUpload(id: string): Promise<void>;
}

/** Enumerates what is stored, for garbage collection and reconciling against the database. */
export interface StorageEnumerator {
  /**
   * Yields the digest of every committed blob, in no particular order, lazily (memory does not
   * grow with the number of blobs). Blobs committed or deleted during the walk may or may not
   * appear.
   */
  listBlobs(): AsyncIterable<string>;

  /**
   * Yields every upload in progress, lazily, for purging stale ones. May include an upload
   * whose creation a crash interrupted (size 0), so that it gets purged too.
   */
  listUploads(): AsyncIterable<UploadInfo>;
}

/**
 * The blob storage port: content-addressed blobs plus resumable uploads. Drivers: filesystem,
 * memory (tests), S3 later; all pass `describeBlobStorageDriver`.
 *
 * Keys. A blob is addressed by its digest, `sha256:<64 lowercase hex>` or
 * `sha512:<128 lowercase hex>`; an upload by a lowercase uuid. Every method rejects any other
 * string with `InvalidStorageKeyError` before touching storage.
 *
 * Streams. Bytes always stream: no method holds a whole blob or upload in memory, so memory
 * per request stays bounded whatever the size (invariant 7). A returned `Readable` holds a
 * resource (a file descriptor, a connection) until it ends or is destroyed: destroy it when
 * you stop reading early.
 *
 * Durability. When `createUpload`, `appendUpload` or `commitUpload` resolves, its effect
 * survives a crash of the process or the machine (invariant 2); the memory driver excepted.
 */
export interface BlobStorage extends BlobReader, BlobDeleter, BlobIngester, StorageEnumerator {
  /** The driver's name as in the reference registry's configuration (`filesystem`, `inmemory`, `s3`). */
  readonly driverName: string;
}
