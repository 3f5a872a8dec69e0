/** A value that survives `JSON.stringify` unchanged; the shape of an error's `detail`. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Machine-readable context attached to a {@link ManifestError}; safe to put in an OCI error body. */
export type ErrorDetail = { readonly [key: string]: JsonValue };

/** The OCI distribution error codes this library can produce. */
export type ManifestErrorCode = 'MANIFEST_INVALID' | 'SIZE_INVALID' | 'DIGEST_INVALID';

/** Longest piece of client input echoed back in a message or detail. */
const ECHO_LIMIT = 100;

/**
 * Shortens client-supplied text before it is echoed in an error, so a hostile payload cannot
 * blow up logs or error bodies. Not exported from the library.
 */
export function excerpt(text: string): string {
  return text.length <= ECHO_LIMIT ? text : `${text.slice(0, ECHO_LIMIT)}…`;
}

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
  constructor(message: string, detail?: ErrorDetail, options?: { cause?: unknown }) {
    super(message, detail, options);
  }
}

/**
 * The manifest is larger than the configured limit. Code `SIZE_INVALID`; the transport is
 * meant to answer 413 for this error (not the 400 used for other `SIZE_INVALID` cases).
 */
export class ManifestTooLargeError extends ManifestError {
  /** Always `SIZE_INVALID`. */
  readonly ociCode = 'SIZE_INVALID' as const;

  /** Builds the error from the payload size and the limit it exceeded, both in bytes. */
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`manifest is ${size} bytes, larger than the ${limit} byte limit`, { size, limit });
  }
}

/**
 * A digest that does not follow the `algorithm:encoded` grammar or its algorithm's encoding
 * (sha256: 64 lowercase hex, sha512: 128 lowercase hex), or embedded descriptor data that
 * does not match its digest. Code `DIGEST_INVALID`.
 */
export class DigestInvalidError extends ManifestError {
  /** Always `DIGEST_INVALID`. */
  readonly ociCode = 'DIGEST_INVALID' as const;

  /** Builds the error; `detail.digest` should carry (an excerpt of) the offending digest. */
  constructor(message: string, detail?: ErrorDetail) {
    super(message, detail);
  }
}

/**
 * A well-formed digest whose algorithm this registry does not support (only sha256 and
 * sha512 are). Code `DIGEST_INVALID`; a subclass of {@link DigestInvalidError}, so code that
 * handles invalid digests handles this one too.
 */
export class DigestUnsupportedError extends DigestInvalidError {
  /** Builds the error for the given algorithm; `detail` may add the digest and field path. */
  constructor(
    readonly algorithm: string,
    detail?: ErrorDetail,
  ) {
    super(`unsupported digest algorithm "${excerpt(algorithm)}" (supported: sha256, sha512)`, {
      algorithm: excerpt(algorithm),
      ...detail,
    });
  }
}
