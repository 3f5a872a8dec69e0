/**
 * @lading/manifest: the pure core for OCI and Docker manifests and digests. No I/O, no
 * framework, no environment; the only lib it imports is `@lading/reference`, whose digest
 * grammar, parser and errors it re-exports so callers find the whole digest API here. Every
 * error thrown for bad input carries a stable OCI `ociCode` and a JSON `detail`: a
 * {@link ManifestError} subclass, or, for a bad digest, `DigestInvalidError` (or its subclass
 * `DigestUnsupportedError`).
 */
export { ManifestError, ManifestInvalidError, ManifestTooLargeError } from './manifest.error';
export type { ManifestErrorCode } from './manifest.error';
export {
  DIGEST_ALGORITHMS,
  DigestInvalidError,
  DigestUnsupportedError,
  digestEquals,
  parseDigest,
  // The names this library has always exported for the reference library's validators.
  isValidDigest as isDigest,
  isSupportedDigestAlgorithm as isSupportedAlgorithm,
} from '@lading/reference';
export type { Digest, DigestAlgorithm, ErrorDetail, JsonValue } from '@lading/reference';
export {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE,
  DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE,
  OCI_EMPTY_DIGEST,
  OCI_EMPTY_MEDIA_TYPE,
  OCI_EMPTY_SIZE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  SCHEMA1_MEDIA_TYPES,
  mediaTypeEssence,
} from './media-types';
export { digestOf } from './digest';
export { createDigestStream, Digester, DigestStream } from './digester';
export type { Descriptor, Platform } from './descriptor';
export type { ManifestKind } from './manifest-codec';
export { isSupportedManifestMediaType, SUPPORTED_MANIFEST_MEDIA_TYPES } from './codecs';
export { DEFAULT_MAX_DESCRIPTORS, DEFAULT_MAX_MANIFEST_SIZE, parseManifest } from './parse-manifest';
export type { ParsedManifest, ParseManifestOptions } from './parse-manifest';
