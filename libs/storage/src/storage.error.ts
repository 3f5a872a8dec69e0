import { excerpt, type ErrorDetail } from '@lading/reference';
import type { ByteRange } from './blob-storage.port';

/** The OCI error codes a storage error answers with. */
export type StorageOciCode = 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_UNKNOWN' | 'RANGE_INVALID' | 'DIGEST_INVALID';

/**
 * Base class of every error a storage driver throws on purpose. Each carries the OCI error code,
 * HTTP status and JSON `detail` a registry answers with (the `OciCoded` shape of
 * `@lading/contracts`, duck-typed by the OCI error filter), so a service can let it propagate
 * instead of translating it. Anything else a driver lets through (EIO, ENOSPC, a network
 * failure) is an infrastructure failure and stays a plain `Error` (500 UNKNOWN).
 */
export abstract class StorageError extends Error {
  /** The OCI error code for this failure. */
  abstract readonly ociCode: StorageOciCode;
  /** The HTTP status for this failure (the one the OCI table gives its code). */
  abstract readonly httpStatus: number;

  constructor(
    message: string,
    /** JSON-able context naming what was not found or not acceptable. */
    readonly detail: ErrorDetail,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The blob `digest` is not in storage (never committed, or deleted). BLOB_UNKNOWN, 404. */
export class BlobNotFoundError extends StorageError {
  readonly ociCode = 'BLOB_UNKNOWN';
  readonly httpStatus = 404;

  constructor(readonly digest: string) {
    super(`blob ${digest} not found`, { digest });
  }
}

/**
 * The upload `uploadId` does not exist (never created, committed, or deleted).
 * BLOB_UPLOAD_UNKNOWN, 404.
 */
export class UploadNotFoundError extends StorageError {
  readonly ociCode = 'BLOB_UPLOAD_UNKNOWN';
  readonly httpStatus = 404;

  constructor(readonly uploadId: string) {
    super(`upload ${uploadId} not found`, { uploadId });
  }
}

/**
 * An append asked to write at `offset`, but the upload holds `currentSize` bytes. Nothing was
 * written; a client resumes at `currentSize`. RANGE_INVALID, 416, `detail.size` = `currentSize`.
 */
export class UploadOffsetMismatchError extends StorageError {
  readonly ociCode = 'RANGE_INVALID';
  readonly httpStatus = 416;

  constructor(
    readonly uploadId: string,
    readonly offset: number,
    readonly currentSize: number,
  ) {
    super(`upload ${uploadId} holds ${currentSize} bytes; cannot append at offset ${offset}`, {
      size: currentSize,
      offset,
    });
  }
}

/**
 * A digest or upload id is not in its canonical form (`sha256:<64 lowercase hex>`,
 * `sha512:<128 lowercase hex>`, a lowercase uuid). Drivers check every key before it reaches
 * a path or object name, so no key can escape the storage root. A bad digest is DIGEST_INVALID
 * (400, `detail.digest`); a bad upload id names no upload there can be, so it is
 * BLOB_UPLOAD_UNKNOWN (404, `detail.uploadId`). The key in message and detail is excerpted.
 */
export class InvalidStorageKeyError extends StorageError {
  readonly ociCode: StorageOciCode;
  readonly httpStatus: number;

  constructor(
    readonly kind: 'digest' | 'uploadId',
    readonly key: string,
  ) {
    const shown = excerpt(key);
    super(`invalid ${kind === 'digest' ? 'blob digest' : 'upload id'} ${JSON.stringify(shown)}`, { [kind]: shown });
    this.ociCode = kind === 'digest' ? 'DIGEST_INVALID' : 'BLOB_UPLOAD_UNKNOWN';
    this.httpStatus = kind === 'digest' ? 400 : 404;
  }
}

/**
 * A ranged read asked for bytes that do not exist: `start` at or past `size`, `end` before
 * `start`, or a bound that is not a non-negative integer. (An `end` past the last byte is not
 * an error: it is clamped, as HTTP does.) RANGE_INVALID, 416, with the range and the size.
 */
export class RangeNotSatisfiableError extends StorageError {
  readonly ociCode = 'RANGE_INVALID';
  readonly httpStatus = 416;

  constructor(
    readonly range: ByteRange,
    readonly size: number,
  ) {
    super(`range ${range.start}-${range.end} not satisfiable for ${size} bytes`, {
      range: { start: jsonNumber(range.start), end: jsonNumber(range.end) },
      size,
    });
  }
}

/** A bound as JSON keeps it: a malformed one (NaN, Infinity, not a number) becomes null. */
function jsonNumber(n: unknown): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}
