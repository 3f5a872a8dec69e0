import type { Readable, Writable } from 'node:stream';

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

/** A committed blob as a listing reports it. */
export interface BlobInfo {
  /** Its canonical digest. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /**
   * When the blob took its current place (the commit that stored it), by the storage's own
   * clock: an S3 object's LastModified, a file's status-change time. Compare it only with
   * `StorageEnumerator.currentTime()`, never with a process's clock. A commit that finds the
   * blob already stored with its size leaves it, and so this time, as it was.
   */
  modified: Date;
}

/**
 * One stored part of an upload, as the driver reported it when it wrote it. Plain JSON: the
 * caller records the list in the upload session and hands it back; it never makes one up.
 */
export interface UploadPart {
  /** The part's name in the layout (a uuid, fresh for every write). */
  name: string;
  /** Its size in bytes. */
  size: number;
  /** The backend's tag of the part's content (S3 ETag), checked when the parts are composed. */
  etag?: string;
}

/** Options of `UploadStore.writePart`. */
export interface WritePartOptions {
  /**
   * Called with every chunk of the source, in order, as it is stored; the caller hashes in the
   * same pass. (Bytes a driver copies from a staged part are not passed again.) If it throws,
   * the write fails like a failing source.
   */
  onData?: (chunk: Buffer) => void;
  /** Aborting stops the write even while the source is stalled; it rejects with the reason. */
  signal?: AbortSignal;
}

/** What `UploadStore.writePart` did. */
export interface WritePartResult {
  /** The upload's parts now, in order: record them in place of the list passed in. */
  parts: UploadPart[];
  /** The upload's size now (the sum of `parts`). */
  size: number;
  /**
   * Parts of the list passed in that the new part replaces (a staged part whose bytes it holds
   * as well). Delete them with `deleteParts` once `parts` is recorded, not before: until then
   * the recorded list still names them.
   */
  superseded: UploadPart[];
}

/** An upload in progress, as listed for purging orphans (uploads with no session). */
export interface UploadInfo {
  /** The upload id (a lowercase uuid). */
  id: string;
  /**
   * When the upload was created, by the creating process's clock (recorded in the upload, not
   * a file or object time, so it compares with another process's clock without a storage's
   * timestamps in between). Null when the marker is unreadable (a creation cut short).
   */
  startedAt: Date | null;
}

/**
 * A blob stream that can also write itself to a destination, faster than `pipeline` can pipe it
 * (the filesystem driver's: several reads in flight into a few reused buffers, each written as
 * soon as it is read). Send it with `sendBlob`, which takes this path when a stream offers it.
 */
export interface SendableBlobStream extends Readable {
  /**
   * Writes the stream's bytes to `target` and ends it, as `pipeline(stream, target)` does:
   * resolves once `target` has finished; rejects when `target` closes or fails first (a client
   * that went away) or a read fails, and then destroys `target` as `pipeline` would (without
   * the error, which the rejection carries: no `error` event on a destination nobody watches). Call it instead of reading the stream, never after: it rejects on a stream already
   * read. However it ends, the stream is destroyed (its file closed, `close` emitted) when it
   * settles, after its last read; it never emits `error`. `onChunk` gets the size of every chunk
   * as it is handed to `target`. Holds a bounded number of buffers, whatever the size.
   */
  sendTo(target: Writable, onChunk?: (bytes: number) => void): Promise<void>;
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
   * byte). The stream is opened before the promise resolves: on the filesystem and in memory a
   * blob deleted meanwhile still reads whole; on S3 a delete during a long read may end the
   * stream with an error (garbage collection's review delay keeps that from happening to a
   * blob anyone can still reach). The stream may be a `SendableBlobStream`: send it with `sendBlob`.
   * @throws BlobNotFoundError when `digest` is not stored.
   * @throws RangeNotSatisfiableError when `range` starts at or past the end, or is malformed.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  readBlob(digest: string, range?: ByteRange): Promise<Readable>;

  /**
   * A URL from which a plain HTTP GET (with or without a `Range` header) reads the blob for
   * `expiresInSeconds`, without credentials; null when the driver cannot make one (filesystem,
   * memory). It does not check that the blob exists.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  blobUrl?(digest: string, expiresInSeconds: number): Promise<string | null>;
}

/** Deletes committed blobs (garbage collection), by exact key. */
export interface BlobDeleter {
  /**
   * Removes the blob; resolves as well when it was not there (idempotent). Readers that have
   * already opened it may finish.
   * @throws InvalidStorageKeyError when `digest` is not a canonical digest.
   */
  deleteBlob(digest: string): Promise<void>;

  /**
   * Removes several blobs (garbage collection), in as few requests as the backend allows (S3:
   * up to 1,000 keys a request); blobs that were not there count as removed. Resolves once every
   * removal is done; rejects if any failed (some may have been removed: repeating is safe).
   * @throws InvalidStorageKeyError when a digest is not canonical, before removing any.
   */
  deleteBlobs(digests: readonly string[]): Promise<void>;
}

/**
 * Resumable uploads as ordered lists of immutable parts.
 *
 * Why parts: object storage has no append and no truncate, and an S3 multipart part must be at
 * least 5 MiB unless it is the last, while clients PATCH chunks of any size. So a write never
 * changes stored bytes: `writePart` stores a new part under a fresh name and returns the new
 * list; the caller records that list (with the size) in the upload session, under its writer
 * lease, and only what is recorded is the upload. A write that dies half way (a crash, a lost
 * lease, a client that went silent) leaves at most a part nobody recorded: nothing to cut back,
 * no file or object time to compare with any clock, and a late write of a writer that lost its
 * lease lands under its own name, where it cannot change the recorded bytes. Small chunks are
 * staged: when the last recorded part is smaller than the driver's `minPartSize`, the new part
 * holds that part's bytes followed by the chunk, and supersedes it; so every part but the last
 * is at least `minPartSize`, and S3 composes the blob from the parts server-side at commit.
 *
 * The driver never checks a digest: the caller hashes the bytes (through `onData`, or
 * `readUpload` after moving between processes) and commits only the parts it verified.
 */
export interface UploadStore {
  /**
   * Parts smaller than this are staged (merged into the next write); 0 when every write may be
   * its own part (the filesystem and memory).
   */
  readonly minPartSize: number;

  /**
   * Creates an empty upload `id`, durably. Idempotent.
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  createUpload(id: string): Promise<void>;

  /**
   * Whether upload `id` exists (created, not yet committed or deleted).
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  uploadExists(id: string): Promise<boolean>;

  /**
   * Stores the source's bytes as a new part after `parts` (staging a small last part, see
   * above) and resolves once the new part is durable. Streams with bounded memory (the S3
   * driver buffers one part of its chunk size at a time). Nothing in `parts` is changed. If the
   * source throws, `onData` throws, `options.signal` aborts, or a write fails, whatever was
   * stored of the new part is removed and the error is rethrown. When it stops early the source
   * is closed with `return()`, as a `for await` loop does.
   * @throws UploadNotFoundError when the upload or a part it must read does not exist.
   * @throws InvalidStorageKeyError when `id` or a part name is not a lowercase uuid.
   */
  writePart(id: string, parts: readonly UploadPart[], source: AsyncIterable<Buffer | Uint8Array>, options?: WritePartOptions): Promise<WritePartResult>;

  /**
   * Streams the bytes of `parts` in order (or the inclusive `range` of them), e.g. to re-hash
   * them on another process.
   * @throws UploadNotFoundError when a part does not exist.
   * @throws RangeNotSatisfiableError when `range` starts at or past the end, or is malformed.
   * @throws InvalidStorageKeyError when `id` or a part name is not a lowercase uuid.
   */
  readUpload(id: string, parts: readonly UploadPart[], range?: ByteRange): Promise<Readable>;

  /**
   * Makes the bytes of `parts` the blob `digest`, then removes the upload; durable when it
   * resolves. Readers see the whole blob or no blob: it appears at once, holding exactly those
   * parts' bytes (server-side on S3: the bytes do not pass through this process). If the blob
   * exists already with that size, the upload is just removed, so concurrent commits of the same
   * content all succeed and leave one copy, and a commit interrupted after the blob appeared can
   * be repeated.
   * @throws UploadNotFoundError when a part does not exist (and the blob is not there).
   * @throws InvalidStorageKeyError when `id`, a part name or `digest` is not canonical.
   */
  commitUpload(id: string, parts: readonly UploadPart[], digest: string): Promise<void>;

  /**
   * Removes the given parts by exact key (superseded ones); idempotent.
   * @throws InvalidStorageKeyError when `id` or a part name is not a lowercase uuid.
   */
  deleteParts(id: string, parts: readonly UploadPart[]): Promise<void>;

  /**
   * Removes the upload and everything stored under it: recorded parts, parts a dead writer left,
   * unfinished S3 multipart uploads. Idempotent.
   * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
   */
  deleteUpload(id: string): Promise<void>;
}

/**
 * Enumerates what is stored, for purging orphans and reconciling against the database: the
 * only listings. Never derive an upload's or blob's state from them.
 */
export interface StorageEnumerator {
  /** Yields the digest of every committed blob, as `listBlobInfo` does (same order). */
  listBlobs(): AsyncIterable<string>;

  /**
   * Yields every committed blob with its size and time, lazily, in ascending order of digest by
   * character code (every `sha256:` before every `sha512:`), so that a caller can merge the
   * listing with another sorted one (the database's rows) holding neither in memory. Blobs
   * committed or deleted during the walk may or may not appear.
   */
  listBlobInfo(): AsyncIterable<BlobInfo>;

  /**
   * The storage's clock now: the `BlobInfo.modified` that a blob committed at this moment gets,
   * at the precision listings report it. Age blobs against this, not the process's clock (the
   * storage may be another machine). Writes a small object under `probes/` and removes it.
   */
  currentTime(): Promise<Date>;

  /** Yields every upload in progress, lazily, including one whose creation was cut short. */
  listUploads(): AsyncIterable<UploadInfo>;
}

/**
 * The blob storage port: a content-addressed blob store plus an upload store of immutable
 * parts. Drivers: filesystem, S3 (MinIO), memory; all pass the shared driver suite of
 * `@lading/testing`. Every key comes from `storage.layout.ts`.
 *
 * Keys. A blob is addressed by its digest, `sha256:<64 lowercase hex>` or
 * `sha512:<128 lowercase hex>`; an upload by a lowercase uuid, a part by the uuid its write
 * chose. Every method rejects any other string with `InvalidStorageKeyError` before touching
 * storage.
 *
 * Streams. Bytes always stream: no method holds a whole blob or upload in memory (invariant 7).
 * A returned `Readable` holds a resource until it ends or is destroyed: destroy it when you
 * stop reading early.
 *
 * Durability. When `createUpload`, `writePart` or `commitUpload` resolves, its effect survives
 * a crash of the process or the machine (invariant 2); the memory driver excepted.
 */
export interface BlobStorage extends BlobReader, BlobDeleter, UploadStore, StorageEnumerator {
  /** The driver's name as in the reference registry's configuration (`filesystem`, `inmemory`, `s3`). */
  readonly driverName: string;
}
