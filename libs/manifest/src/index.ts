/**
 * @lading/manifest: the pure core for OCI and Docker manifests and digests. No I/O, no
 * framework, no environment. Every error thrown for bad input is a {@link ManifestError}
 * subclass carrying a stable OCI `ociCode`.
 */
export {
  DigestInvalidError,
  DigestUnsupportedError,
  ManifestError,
  ManifestInvalidError,
  ManifestTooLargeError,
} from './manifest.error';
export type { ErrorDetail, JsonValue, ManifestErrorCode } from './manifest.error';
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
export { DIGEST_ALGORITHMS, digestEquals, digestOf, isDigest, isSupportedAlgorithm, parseDigest } from './digest';
export type { Digest, DigestAlgorithm } from './digest';
export { createDigestStream, Digester, DigestStream } from './digester';
export type { Descriptor, Platform } from './descriptor';
export type { ManifestKind } from './manifest-codec';
export { isSupportedManifestMediaType, SUPPORTED_MANIFEST_MEDIA_TYPES } from './codecs';
export { DEFAULT_MAX_DESCRIPTORS, DEFAULT_MAX_MANIFEST_SIZE, parseManifest } from './parse-manifest';
export type { ParsedManifest, ParseManifestOptions } from './parse-manifest';
