import { Buffer } from 'node:buffer';
import { DigestInvalidError, parseDigest, type Digest } from '@lading/reference';
import { digestOf } from './digest';
import {
  field,
  fieldPath,
  invalidField,
  isJsonObject,
  JsonObject,
  optionalMediaType,
  optionalObject,
  optionalString,
  optionalStringArray,
  optionalStringMap,
  requiredMediaType,
} from './json-fields';

/** The platform a manifest in an index runs on (image-spec `platform`); unknown fields dropped. */
export interface Platform {
  /** CPU architecture, e.g. `amd64`. */
  readonly architecture?: string;
  /** Operating system, e.g. `linux`. */
  readonly os?: string;
  /** Operating system version, e.g. `10.0.14393.1066`. */
  readonly 'os.version'?: string;
  /** Required operating system features, e.g. `win32k`. */
  readonly 'os.features'?: readonly string[];
  /** CPU variant, e.g. `v7`. */
  readonly variant?: string;
  /** Docker manifest list's reserved `features` list. */
  readonly features?: readonly string[];
}

/**
 * A validated content descriptor. `digest` is a valid sha256/sha512 digest; `size` a
 * non-negative safe integer; `data`, when present, is base64 that decodes to exactly `size`
 * bytes with that digest.
 */
export interface Descriptor {
  /** Media type of the referenced content. */
  readonly mediaType: string;
  /** Digest of the referenced content, `algorithm:hex`. */
  readonly digest: string;
  /** Size of the referenced content in bytes. */
  readonly size: number;
  /** Locations the content may also be fetched from. */
  readonly urls?: readonly string[];
  /** Arbitrary string metadata. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Platform of the referenced manifest (index entries). */
  readonly platform?: Platform;
  /** Artifact type of the referenced manifest. */
  readonly artifactType?: string;
  /** The referenced content embedded as base64. */
  readonly data?: string;
}

/** Standard (RFC 4648 §4) padded base64, as Go's `[]byte` JSON encoding writes it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Reads and validates one descriptor at `path`. Throws {@link ManifestInvalidError} for a
 * missing or mistyped field, {@link DigestInvalidError} / {@link DigestUnsupportedError} for a
 * bad digest or embedded data that does not match it. Not exported from the library.
 */
export function readDescriptor(value: unknown, path: string): Descriptor {
  if (!isJsonObject(value)) throw invalidField(path, 'must be a descriptor object');
  const mediaType = requiredMediaType(value, 'mediaType', path);
  const digest = readDigest(value, path);
  const size = readSize(value, path);
  const urls = optionalStringArray(value, 'urls', path);
  const annotations = optionalStringMap(value, 'annotations', path);
  const platform = readPlatform(value, path);
  const artifactType = optionalMediaType(value, 'artifactType', path);
  const data = readData(value, path, digest, size);
  return {
    mediaType,
    digest: digest.toString(),
    size,
    ...(urls && { urls }),
    ...(annotations && { annotations }),
    ...(platform && { platform }),
    ...(artifactType !== undefined && { artifactType }),
    ...(data !== undefined && { data }),
  };
}

/** Reads an optional descriptor field such as `subject`. */
export function optionalDescriptor(obj: JsonObject, key: string, path: string): Descriptor | undefined {
  const value = field(obj, key);
  return value === undefined ? undefined : readDescriptor(value, fieldPath(path, key));
}

/** Reads a required descriptor field such as `config`. */
export function requiredDescriptor(obj: JsonObject, key: string, path: string): Descriptor {
  const descriptor = optionalDescriptor(obj, key, path);
  if (descriptor === undefined) throw invalidField(fieldPath(path, key), 'is required');
  return descriptor;
}

/**
 * Reads a descriptor array such as `layers` or `manifests`. Absent (or null) gives `[]` unless
 * `required`. The length is checked against `maxCount` before any element is looked at, so an
 * enormous array is refused at once.
 */
export function descriptorArray(
  obj: JsonObject,
  key: string,
  options: { readonly required: boolean; readonly maxCount: number },
): Descriptor[] {
  const value = field(obj, key);
  if (value === undefined) {
    if (options.required) throw invalidField(key, 'is required');
    return [];
  }
  if (!Array.isArray(value)) throw invalidField(key, 'must be an array of descriptors');
  if (value.length > options.maxCount) {
    throw invalidField(key, `has ${value.length} entries, more than the limit of ${options.maxCount}`, {
      count: value.length,
      limit: options.maxCount,
    });
  }
  return value.map((item, i) => readDescriptor(item, `${key}[${i}]`));
}

function readDigest(obj: JsonObject, path: string): Digest {
  const at = fieldPath(path, 'digest');
  const value = field(obj, 'digest');
  if (value === undefined) throw invalidField(at, 'is required');
  if (typeof value !== 'string') throw invalidField(at, 'must be a string');
  return parseDigest(value, at);
}

function readSize(obj: JsonObject, path: string): number {
  const at = fieldPath(path, 'size');
  const value = field(obj, 'size');
  if (value === undefined) throw invalidField(at, 'is required');
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidField(at, 'must be a non-negative integer', {
      value: typeof value === 'number' ? value : typeof value,
    });
  }
  return value === 0 ? 0 : value; // normalises -0
}

function readPlatform(obj: JsonObject, path: string): Platform | undefined {
  const platform = optionalObject(obj, 'platform', path);
  if (platform === undefined) return undefined;
  const at = fieldPath(path, 'platform');
  const result: Record<string, string | string[]> = {};
  for (const key of ['architecture', 'os', 'os.version', 'variant'] as const) {
    const value = optionalString(platform, key, at);
    if (value !== undefined) result[key] = value;
  }
  for (const key of ['os.features', 'features'] as const) {
    const value = optionalStringArray(platform, key, at);
    if (value !== undefined) result[key] = value;
  }
  return result as Platform;
}

/**
 * The descriptor `data` field must be base64 and, per image-spec, identical to the referenced
 * content: we check both size and digest, which is cheap next to the 4 MiB manifest limit.
 */
function readData(obj: JsonObject, path: string, digest: Digest, size: number): string | undefined {
  const data = optionalString(obj, 'data', path);
  if (data === undefined) return undefined;
  const at = fieldPath(path, 'data');
  if (!BASE64.test(data)) throw invalidField(at, 'must be standard padded base64');
  const bytes = Buffer.from(data, 'base64');
  if (bytes.byteLength !== size) {
    throw invalidField(at, `decodes to ${bytes.byteLength} bytes but the descriptor size is ${size}`, {
      decodedSize: bytes.byteLength,
      size,
    });
  }
  const actual = digestOf(bytes, digest.algorithm);
  if (actual !== digest.toString()) {
    throw new DigestInvalidError(`manifest invalid: ${at} does not match the descriptor digest`, {
      path: at,
      digest: digest.toString(),
      actual,
    });
  }
  return data;
}
