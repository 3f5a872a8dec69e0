import { excerpt } from '@lading/reference';
import { codecFor, inferCodec } from './codecs';
import { Descriptor } from './descriptor';
import { field, isJsonObject, JsonObject, refuseNulCharacters } from './json-fields';
import { ManifestInvalidError, ManifestTooLargeError } from './manifest.error';
import { ManifestCodec, ManifestContent, ManifestKind } from './manifest-codec';
import { FOREIGN_LAYER_MEDIA_TYPES, mediaTypeEssence, SCHEMA1_MEDIA_TYPES } from './media-types';

/** Default manifest size limit: 4 MiB, the reference registry's limit. */
export const DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** Default cap on the entries of `layers` or `manifests`. */
export const DEFAULT_MAX_DESCRIPTORS = 10_000;

/** Options of {@link parseManifest}. */
export interface ParseManifestOptions {
  /** Largest accepted payload in bytes; default {@link DEFAULT_MAX_MANIFEST_SIZE}. */
  readonly maxSize?: number;
  /** Most entries accepted in `layers` or `manifests`; default {@link DEFAULT_MAX_DESCRIPTORS}. */
  readonly maxDescriptors?: number;
}

/**
 * A validated manifest or index. The reference lists are plain readonly fields computed once
 * at parse time (not methods), so a ParsedManifest is plain data that can be compared,
 * cloned or logged.
 */
export interface ParsedManifest {
  /** The canonical media type (one of the supported manifest media types). */
  readonly mediaType: string;
  /** `manifest` for OCI/Docker manifests, `index` for OCI indexes and Docker manifest lists. */
  readonly kind: ManifestKind;
  /** Always 2. */
  readonly schemaVersion: 2;
  /** The config descriptor (manifests only). */
  readonly config?: Descriptor;
  /** The layers, in order (empty for an index). */
  readonly layers: readonly Descriptor[];
  /** The child manifests, in order (empty for a manifest). */
  readonly manifests: readonly Descriptor[];
  /** The manifest this one refers to (OCI manifest and index only). */
  readonly subject?: Descriptor;
  /** The top-level `artifactType` (OCI manifest and index only). */
  readonly artifactType?: string;
  /** The top-level annotations (OCI manifest and index only). */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Blobs the registry must hold for this manifest: config then layers, each digest once, in
   * order of first appearance. Foreign / non-distributable layers that carry `urls` are left
   * out (clients fetch them from those URLs). Empty for an index.
   */
  readonly blobReferences: readonly Descriptor[];
  /** Manifests an index refers to: its `manifests`, each digest once. Empty for a manifest. */
  readonly childReferences: readonly Descriptor[];
  /**
   * The artifact type shown for this manifest in a referrers list: `artifactType`, else (for a
   * manifest) `config.mediaType`; undefined for an index without `artifactType`.
   */
  readonly referrerArtifactType?: string;
}

/**
 * `Content-Type` values that say nothing about the manifest kind; treated like a missing
 * header so the body's `mediaType` (or its shape) decides.
 */
const GENERIC_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/octet-stream',
  'text/plain',
]);

/**
 * Validates manifest bytes exactly as received and returns what the registry needs from them.
 *
 * Order of checks: size (against `options.maxSize`, default 4 MiB), UTF-8 JSON object, no NUL
 * character (U+0000) in any key or string, schema 1 refusal, `schemaVersion` 2, media type (body
 * `mediaType`, else `Content-Type` without parameters, else inferred from the shape; body and
 * header must agree), then the codec of that media type. Unknown fields are ignored (beyond the
 * NUL check) and `null` reads as absent.
 *
 * Throws {@link ManifestTooLargeError} (SIZE_INVALID) when too large;
 * {@link DigestInvalidError} / {@link DigestUnsupportedError} (DIGEST_INVALID) for a
 * descriptor digest that is malformed, of an unsupported algorithm, or contradicted by the
 * descriptor's embedded `data`; {@link ManifestInvalidError} (MANIFEST_INVALID) for everything
 * else. Throws a RangeError only for invalid `options` (a programming error, not bad input).
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType?: string,
  options: ParseManifestOptions = {},
): ParsedManifest {
  const maxSize = limitOption(options.maxSize, DEFAULT_MAX_MANIFEST_SIZE, 'maxSize');
  const maxDescriptors = limitOption(options.maxDescriptors, DEFAULT_MAX_DESCRIPTORS, 'maxDescriptors');
  if (bytes.byteLength > maxSize) throw new ManifestTooLargeError(bytes.byteLength, maxSize);

  const body = decodeJsonObject(bytes);
  const header = mediaTypeEssence(contentType);
  const declaredByHeader = header !== undefined && !GENERIC_CONTENT_TYPES.has(header) ? header : undefined;
  const declaredByBody = bodyMediaType(body);

  refuseSchema1(body, declaredByBody, declaredByHeader);
  checkSchemaVersion(body);
  if (declaredByBody !== undefined && declaredByHeader !== undefined && declaredByBody !== declaredByHeader) {
    throw new ManifestInvalidError(
      `manifest invalid: mediaType "${excerpt(declaredByBody)}" does not match Content-Type "${excerpt(declaredByHeader)}"`,
      { path: 'mediaType', mediaType: excerpt(declaredByBody), contentType: excerpt(declaredByHeader) },
    );
  }

  const declared = declaredByBody ?? declaredByHeader;
  const codec = declared === undefined ? inferCodec(body) : requireCodec(declared);
  return toParsedManifest(codec, codec.decode(body, { maxDescriptors }));
}

function limitOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(value === Infinity || (Number.isSafeInteger(value) && value >= 0))) {
    throw new RangeError(`parseManifest: ${name} must be a non-negative integer or Infinity, got ${value}`);
  }
  return value;
}

// fatal: invalid UTF-8 is an error, not U+FFFD. ignoreBOM: a BOM is kept, so JSON.parse refuses
// it, as Go's encoding/json (and so most clients) would.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeJsonObject(bytes: Uint8Array): JsonObject {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch (error) {
    throw new ManifestInvalidError('manifest invalid: body is not valid UTF-8', undefined, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ManifestInvalidError(
      'manifest invalid: body is not valid JSON',
      { reason: excerpt(reason) },
      { cause: error },
    );
  }
  if (!isJsonObject(value)) {
    const found = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    throw new ManifestInvalidError(`manifest invalid: body must be a JSON object, got ${found}`, { found });
  }
  refuseNulCharacters(text, value);
  return value;
}

/** The body's `mediaType`, lowercased; an empty string counts as absent. */
function bodyMediaType(body: JsonObject): string | undefined {
  const value = field(body, 'mediaType');
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new ManifestInvalidError('manifest invalid: mediaType must be a string', { path: 'mediaType' });
  return value === '' ? undefined : value.toLowerCase();
}

function refuseSchema1(body: JsonObject, byBody: string | undefined, byHeader: string | undefined): void {
  const named = [byBody, byHeader].find((type) => type !== undefined && SCHEMA1_MEDIA_TYPES.includes(type));
  if (named !== undefined || field(body, 'schemaVersion') === 1) {
    throw new ManifestInvalidError('manifest invalid: schema 1 manifests are not supported; push schema 2 or OCI', {
      schemaVersion: 1,
      ...(named !== undefined && { mediaType: named }),
    });
  }
}

function checkSchemaVersion(body: JsonObject): void {
  const version = field(body, 'schemaVersion');
  if (version !== 2) {
    const found = version === undefined ? 'missing' : typeof version === 'number' ? String(version) : typeof version;
    throw new ManifestInvalidError(`manifest invalid: schemaVersion must be 2 (${found})`, {
      path: 'schemaVersion',
      found,
    });
  }
}

function requireCodec(mediaType: string): ManifestCodec {
  const codec = codecFor(mediaType);
  if (codec === undefined) {
    throw new ManifestInvalidError(`manifest invalid: unsupported manifest media type "${excerpt(mediaType)}"`, {
      mediaType: excerpt(mediaType),
    });
  }
  return codec;
}

function toParsedManifest(codec: ManifestCodec, content: ManifestContent): ParsedManifest {
  const { config, subject, artifactType, annotations } = content;
  const layers = content.layers ?? [];
  const manifests = content.manifests ?? [];
  const referrerArtifactType = artifactType ?? config?.mediaType;
  return {
    mediaType: codec.mediaType,
    kind: codec.kind,
    schemaVersion: 2,
    ...(config && { config }),
    layers,
    manifests,
    ...(subject && { subject }),
    ...(artifactType !== undefined && { artifactType }),
    ...(annotations && { annotations }),
    blobReferences: uniqueByDigest([...(config ? [config] : []), ...layers.filter((layer) => !isExternal(layer))]),
    childReferences: uniqueByDigest(manifests),
    ...(referrerArtifactType !== undefined && { referrerArtifactType }),
  };
}

/** A layer that clients fetch from its `urls` rather than from the registry. */
function isExternal(layer: Descriptor): boolean {
  return FOREIGN_LAYER_MEDIA_TYPES.has(layer.mediaType) && (layer.urls?.length ?? 0) > 0;
}

function uniqueByDigest(descriptors: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((descriptor) => {
    if (seen.has(descriptor.digest)) return false;
    seen.add(descriptor.digest);
    return true;
  });
}
