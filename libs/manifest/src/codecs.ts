import { dockerManifestListCodec } from './docker-manifest-list.codec';
import { dockerManifestCodec } from './docker-manifest.codec';
import { JsonObject } from './json-fields';
import { ManifestInvalidError } from './manifest.error';
import { ManifestCodec } from './manifest-codec';
import { ociIndexCodec } from './oci-index.codec';
import { ociManifestCodec } from './oci-manifest.codec';

/** Every supported manifest media type, one codec each. Adding a kind = one codec file + one row. */
const CODECS: readonly ManifestCodec[] = [
  ociManifestCodec,
  ociIndexCodec,
  dockerManifestCodec,
  dockerManifestListCodec,
];

const BY_MEDIA_TYPE: ReadonlyMap<string, ManifestCodec> = new Map(CODECS.map((codec) => [codec.mediaType, codec]));

/** The manifest media types Lading accepts and serves, OCI first. */
export const SUPPORTED_MANIFEST_MEDIA_TYPES: readonly string[] = CODECS.map((codec) => codec.mediaType);

/** True when `mediaType` (exact, lowercase, no parameters) is a supported manifest media type. */
export function isSupportedManifestMediaType(mediaType: unknown): boolean {
  return typeof mediaType === 'string' && BY_MEDIA_TYPE.has(mediaType);
}

/** The codec for `mediaType`, if it is supported. Not exported from the library. */
export function codecFor(mediaType: string): ManifestCodec | undefined {
  return BY_MEDIA_TYPE.get(mediaType);
}

/**
 * The codec for a body that names no media type, found by shape. Throws
 * {@link ManifestInvalidError} when no codec, or more than one, recognises it. Not exported
 * from the library.
 */
export function inferCodec(body: JsonObject): ManifestCodec {
  const matches = CODECS.filter((codec) => codec.sniff?.(body) === true);
  if (matches.length === 1) return matches[0];
  const reason =
    matches.length === 0
      ? 'has no mediaType, no usable Content-Type, and neither config nor manifests'
      : `has no mediaType and could be any of ${matches.map((codec) => codec.mediaType).join(', ')}`;
  throw new ManifestInvalidError(`manifest invalid: the body ${reason}`, {
    candidates: matches.map((codec) => codec.mediaType),
  });
}
