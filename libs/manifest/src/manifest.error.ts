import type { ErrorDetail } from '@lading/reference';

/**
 * The OCI distribution error codes this library can produce: a {@link ManifestError} carries
 * MANIFEST_INVALID or SIZE_INVALID; DIGEST_INVALID comes as the reference library's
 * `DigestInvalidError`, the one error for bad digests.
 */
export type ManifestErrorCode = 'MANIFEST_INVALID' | 'SIZE_INVALID' | 'DIGEST_INVALID';

/**
 * Base of every error this library throws for bad input. `ociCode` is the stable OCI
 * distribution error code; `detail` is optional JSON-able context. Mapping to an HTTP status
 * happens once, in the transport layer.
 */
export abstract class ManifestError extends Error {
  /** The OCI distribution error code for this failure. */
  abstract readonly ociCode: ManifestErrorCode;
  /** JSON-able context (offending field path, sizes, digests…), if any. */
  readonly detail?: ErrorDetail;

  protected constructor(message: string, detail?: ErrorDetail, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    if (detail !== undefined) this.detail = detail;
  }
}

/**
 * The manifest is not acceptable: unreadable JSON, wrong field types, `schemaVersion` other
 * than 2, a schema 1 manifest, an unknown media type or a body/`Content-Type` disagreement.
 * `detail.path` names the offending field when there is one.
 */
export class ManifestInvalidError extends ManifestError {
  /** Always `MANIFEST_INVALID`. */
  readonly ociCode = 'MANIFEST_INVALID' as const;

  /** Builds the error; `detail` should name the offending field as `path`. */
  constructor(message = 'manifest invalid', detail?: ErrorDetail, options?: { cause?: unknown }) {
    super(message, detail, options);
  }
}

/**
 * The manifest is larger than the configured limit. Code `SIZE_INVALID` answered with 413
 * (`httpStatus`), not the 400 used for other `SIZE_INVALID` cases.
 */
export class ManifestTooLargeError extends ManifestError {
  /** Always `SIZE_INVALID`. */
  readonly ociCode = 'SIZE_INVALID' as const;
  /** 413 Payload Too Large; read by the OCI error filter, which otherwise uses the code's status. */
  readonly httpStatus = 413;

  /** Builds the error from the payload size and the limit it exceeded, both in bytes. */
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`manifest is ${size} bytes, larger than the ${limit} byte limit`, { size, limit });
  }
}
