/** OCI image manifest (image-spec 1.1). */
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** OCI image index (image-spec 1.1). */
export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
/** Docker image manifest v2, schema 2. */
export const DOCKER_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker manifest list (the schema 2 multi-platform list). */
export const DOCKER_MANIFEST_LIST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Docker schema 1 manifest: recognised only to be refused with `MANIFEST_INVALID`. */
export const DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v1+json';
/** Signed Docker schema 1 manifest: recognised only to be refused with `MANIFEST_INVALID`. */
export const DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
/** The OCI empty descriptor's media type (the two-byte blob `{}`), used as an artifact's config. */
export const OCI_EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** Digest of the OCI empty blob `{}`. */
export const OCI_EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
/** Size in bytes of the OCI empty blob `{}`. */
export const OCI_EMPTY_SIZE = 2;

/** The schema 1 media types, which Lading refuses. */
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [
  DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE,
  DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE,
];

/**
 * Layer media types whose blobs may live outside the registry when the descriptor carries
 * `urls` (Windows base layers, for example); clients fetch them from those URLs, so a
 * registry must not demand them. Not exported from the library.
 */
export const FOREIGN_LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/**
 * RFC 6838 `type/subtype` (restricted-name characters), optionally followed by parameters.
 * Not exported from the library.
 */
export const MEDIA_TYPE_SHAPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:\s*;.*)?$/s;

/**
 * The essence of a `Content-Type` value: parameters (`; charset=utf-8`) and surrounding space
 * dropped, lowercased. Undefined for a missing or blank header. Never throws.
 */
export function mediaTypeEssence(contentType: string | undefined | null): string | undefined {
  if (typeof contentType !== 'string') return undefined;
  const essence = contentType.split(';', 1)[0].trim().toLowerCase();
  return essence === '' ? undefined : essence;
}
