import { Descriptor } from './descriptor';
import { JsonObject } from './json-fields';

/** Whether a document is a single manifest (references blobs) or an index (references manifests). */
export type ManifestKind = 'manifest' | 'index';

/** Limits a codec enforces while decoding. Not exported from the library. */
export interface DecodeLimits {
  /** Most entries accepted in `layers` or `manifests`. */
  readonly maxDescriptors: number;
}

/** The fields a codec extracts from a body; the parser derives the rest. Not exported from the library. */
export interface ManifestContent {
  readonly config?: Descriptor;
  readonly layers?: readonly Descriptor[];
  readonly manifests?: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Knows one manifest media type: validates a parsed JSON body of that type and extracts its
 * fields. Registered in the table in `codecs.ts`; adding a kind is one codec file plus one row.
 * Not exported from the library.
 */
export interface ManifestCodec {
  /** The media type this codec handles. */
  readonly mediaType: string;
  /** Single manifest or index. */
  readonly kind: ManifestKind;
  /**
   * For bodies that name no media type (neither a `mediaType` field nor a useful
   * `Content-Type`): true when the body looks like this kind. Omitted by codecs that are
   * never inferred.
   */
  readonly sniff?: (body: JsonObject) => boolean;
  /** Validates `body`; throws a {@link ManifestError} subclass naming the offending field. */
  decode(body: JsonObject, limits: DecodeLimits): ManifestContent;
}
