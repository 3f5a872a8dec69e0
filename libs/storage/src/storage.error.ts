import type { ByteRange } from './blob-storage.port';

/**
 * Base class of every error a storage driver throws on purpose. Callers map these to OCI
 * errors (blob unknown, upload unknown, range not satisfiable…); anything else a driver lets
 * through (EIO, ENOSPC, a network failure) is an infrastructure failure and stays a plain
 * `Error`.
 */
export class StorageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The blob `digest` is not in storage (never committed, or deleted). */
export class BlobNotFoundError extends StorageError {
  constructor(readonly digest: string) {
    super(`blob ${digest} not found`);
  }
}

/** The upload `uploadId` does not exist (never created, committed, or deleted). */
export class UploadNotFoundError extends StorageError {
  constructor(readonly uploadId: string) {
    super(`upload ${uploadId} not found`);
  }
}

/**
 * An append asked to write at `offset`, but the upload holds `currentSize` bytes. Nothing was
 * written; a client resumes at `currentSize`.
 */
export class UploadOffsetMismatchError extends StorageError {
  constructor(
    readonly uploadId: string,
    readonly offset: number,
    readonly currentSize: number,
  ) {
    super(`upload ${uploadId} holds ${currentSize} bytes; cannot append at offset ${offset}`);
  }
}

/**
 * A digest or upload id is not in its canonical form (`sha256:<64 lowercase hex>`,
 * `sha512:<128 lowercase hex>`, a lowercase uuid). Drivers check every key before it reaches
 * a path or object name, so no key can escape the storage root.
 */
export class InvalidStorageKeyError extends StorageError {
  constructor(
    readonly kind: 'digest' | 'uploadId',
    readonly key: string,
  ) {
    super(`invalid ${kind === 'digest' ? 'blob digest' : 'upload id'} ${JSON.stringify(key)}`);
  }
}

/**
 * A ranged read asked for bytes that do not exist: `start` at or past `size`, `end` before
 * `start`, or a bound that is not a non-negative integer. (An `end` past the last byte is not
 * an error: it is clamped, as HTTP does.)
 */
export class RangeNotSatisfiableError extends StorageError {
  constructor(
    readonly range: ByteRange,
    readonly size: number,
  ) {
    super(`range ${range.start}-${range.end} not satisfiable for ${size} bytes`);
  }
}
