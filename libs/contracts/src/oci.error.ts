/**
 * Registry errors as domain values. Each carries its OCI error code; the HTTP status comes from
 * one table ({@link OCI_ERROR_STATUS}) so the mapping to the wire happens in exactly one place
 * (the OCI exception filter in nest-common). The pure libs' errors (and the storage errors) are
 * not subclasses of {@link RegistryError}: they carry the same `ociCode`/`detail`/`httpStatus`
 * fields and are recognised by {@link isOciCoded}. Two of them are re-exported here because
 * services raise them too: `DigestInvalidError` (from `@lading/reference`) and
 * `ManifestInvalidError` (from `@lading/manifest`).
 */
export { DigestInvalidError } from '@lading/reference';
export { ManifestInvalidError } from '@lading/manifest';

/**
 * The OCI distribution-spec error codes, plus UNKNOWN for bugs, RANGE_INVALID for uploads,
 * UNAVAILABLE for a backend that is down or full and HEADERS_TOO_LARGE for a request head over
 * `http.maxheaderbytes`.
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAVAILABLE'
  | 'HEADERS_TOO_LARGE'
  | 'UNKNOWN';

/** The HTTP status each code answers with unless an error says otherwise. */
export const OCI_ERROR_STATUS: Readonly<Record<OciErrorCode, number>> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNAVAILABLE: 503,
  HEADERS_TOO_LARGE: 431,
  UNKNOWN: 500,
};

/** Anything that carries an OCI code: our own errors and the typed errors of the pure libs. */
export interface OciCoded {
  readonly ociCode: string;
  readonly message: string;
  readonly detail?: unknown;
  readonly httpStatus?: number;
  /** When set, the answer carries `Retry-After` with this many seconds. */
  readonly retryAfterSeconds?: number;
}

/** True when `e` carries an OCI error code (duck-typed, so the pure libs need not import us). */
export function isOciCoded(e: unknown): e is OciCoded {
  return typeof e === 'object' && e !== null && typeof (e as { ociCode?: unknown }).ociCode === 'string';
}

/** Base of every registry error. `httpStatus` overrides the table when a code has two statuses. */
export class RegistryError extends Error implements OciCoded {
  constructor(
    readonly ociCode: OciErrorCode,
    message: string,
    readonly detail?: unknown,
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The blob is not linked to the repository (or does not exist at all). */
export class BlobUnknownError extends RegistryError {
  constructor(digest: string) {
    super('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
  }
}

/** The upload session is unknown, expired or already finished. */
export class BlobUploadUnknownError extends RegistryError {
  constructor(uploadId: string) {
    super('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uploadId });
  }
}

/** The upload request is malformed (bad Content-Range, short body, bad query). */
export class BlobUploadInvalidError extends RegistryError {
  constructor(reason: string, detail?: unknown) {
    super('BLOB_UPLOAD_INVALID', `blob upload invalid: ${reason}`, detail);
  }
}

/** A chunk does not start where the upload ends (416 with the current range). */
export class RangeInvalidError extends RegistryError {
  constructor(
    readonly currentSize: number,
    detail?: unknown,
  ) {
    super('RANGE_INVALID', 'requested range not satisfiable', detail ?? { size: currentSize });
  }
}

/** The Content-Length or size does not match the content. */
export class SizeInvalidError extends RegistryError {
  constructor(message = 'provided length did not match content length', detail?: unknown, status?: number) {
    super('SIZE_INVALID', message, detail, status);
  }
}

/** A manifest references a blob or child manifest the repository does not have. */
export class ManifestBlobUnknownError extends RegistryError {
  constructor(digest: string) {
    super('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', { digest });
  }
}

/** No manifest by that tag or digest in the repository. */
export class ManifestUnknownError extends RegistryError {
  constructor(reference: string) {
    super('MANIFEST_UNKNOWN', 'manifest unknown to registry', { reference });
  }
}

/** The repository name violates the grammar. */
export class NameInvalidError extends RegistryError {
  constructor(name: string, reason = 'invalid repository name') {
    super('NAME_INVALID', reason, { name });
  }
}

/** The repository is not known to the registry. */
export class NameUnknownError extends RegistryError {
  constructor(name: string) {
    super('NAME_UNKNOWN', 'repository name not known to registry', { name });
  }
}

/** The operation is switched off or not supported (405 unless told otherwise). */
export class UnsupportedError extends RegistryError {
  constructor(message = 'the operation is unsupported', detail?: unknown, status?: number) {
    super('UNSUPPORTED', message, detail, status);
  }
}

/** A route that does not exist in the /v2 API. */
export class RouteNotFoundError extends RegistryError {
  constructor(path: string) {
    super('NAME_UNKNOWN', 'no such API endpoint', { path }, 404);
  }
}

/** A backend (database, storage, upstream service) is not reachable right now. */
export class UnavailableError extends RegistryError {
  constructor(message = 'service unavailable', detail?: unknown) {
    super('UNAVAILABLE', message, detail);
  }
}

/**
 * The gateway's queue of requests waiting for a connection to a service is full: the client is
 * told to come back later instead of waiting without bound.
 */
export class UpstreamBusyError extends UnavailableError {
  readonly retryAfterSeconds: number;

  constructor(upstream: string, retryAfterSeconds = 1) {
    super('too many requests waiting for the service; retry later', { upstream });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The request head (request line and headers) is larger than the server accepts. */
export class HeadersTooLargeError extends RegistryError {
  constructor(limitBytes: number) {
    super('HEADERS_TOO_LARGE', 'request header fields too large', { limit: limitBytes });
  }
}

/**
 * The request could not be parsed as HTTP (a malformed request line, header or chunk): 400, with
 * the OCI body instead of Node's bare status line.
 */
export class MalformedRequestError extends RegistryError {
  constructor(reason: string) {
    super('UNSUPPORTED', 'malformed HTTP request', { reason }, 400);
  }
}

/** The caller is not authenticated. */
export class UnauthorizedError extends RegistryError {
  constructor(message = 'authentication required', detail?: unknown) {
    super('UNAUTHORIZED', message, detail);
  }
}

/** The caller is authenticated but not allowed. */
export class DeniedError extends RegistryError {
  constructor(message = 'requested access to the resource is denied', detail?: unknown) {
    super('DENIED', message, detail);
  }
}

/** The body the API answers with for an error: `{"errors":[{code,message,detail}]}`. */
export function ociErrorBody(e: OciCoded): { errors: { code: string; message: string; detail: unknown }[] } {
  return { errors: [{ code: e.ociCode, message: e.message, detail: e.detail ?? null }] };
}

/** The status for an OCI-coded error: its own override, else the table, else 500. */
export function ociErrorStatus(e: OciCoded): number {
  return e.httpStatus ?? OCI_ERROR_STATUS[e.ociCode as OciErrorCode] ?? 500;
}

/** The `n` of a paginated listing is not a non-negative integer. */
export class PaginationNumberInvalidError extends RegistryError {
  constructor(n: string) {
    super('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
  }
}
