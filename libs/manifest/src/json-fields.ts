import { type ErrorDetail, excerpt } from '@lading/reference';
import { ManifestInvalidError } from './manifest.error';
import { MEDIA_TYPE_SHAPE } from './media-types';

/**
 * Typed readers over parsed JSON. Each reads one own field, treats `null` as absent (clients
 * serialise unset optional fields as null), and throws {@link ManifestInvalidError} naming the
 * field's path when the type is wrong. Nothing in this file is exported from the library.
 */

/** A JSON object as produced by `JSON.parse`. */
export type JsonObject = { readonly [key: string]: unknown };

/** True for a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `path.key`, or `key` at the top level. */
export function fieldPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** A {@link ManifestInvalidError} for the field at `path`. */
export function invalidField(path: string, problem: string, detail?: ErrorDetail): ManifestInvalidError {
  return new ManifestInvalidError(`manifest invalid: ${path === '' ? 'manifest' : path} ${problem}`, {
    ...(path === '' ? {} : { path }),
    ...detail,
  });
}

/** The own field `key` of `obj`; inherited properties and `null` read as undefined. */
export function field(obj: JsonObject, key: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(obj, key)) return undefined;
  const value = obj[key];
  return value === null ? undefined : value;
}

/** Optional string field. */
export function optionalString(obj: JsonObject, key: string, path: string): string | undefined {
  const value = field(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidField(fieldPath(path, key), 'must be a string');
  return value;
}

/** Optional media type field: a string shaped like an RFC 6838 media type. */
export function optionalMediaType(obj: JsonObject, key: string, path: string): string | undefined {
  const value = optionalString(obj, key, path);
  if (value !== undefined && !MEDIA_TYPE_SHAPE.test(value)) {
    throw invalidField(fieldPath(path, key), 'must be a media type (type/subtype)', { value: excerpt(value) });
  }
  return value;
}

/** Required media type field. */
export function requiredMediaType(obj: JsonObject, key: string, path: string): string {
  const value = optionalMediaType(obj, key, path);
  if (value === undefined) throw invalidField(fieldPath(path, key), 'is required');
  return value;
}

/** Optional object field. */
export function optionalObject(obj: JsonObject, key: string, path: string): JsonObject | undefined {
  const value = field(obj, key);
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) throw invalidField(fieldPath(path, key), 'must be an object');
  return value;
}

/** Optional array-of-strings field; the result is a fresh array. */
export function optionalStringArray(obj: JsonObject, key: string, path: string): string[] | undefined {
  const value = field(obj, key);
  if (value === undefined) return undefined;
  const at = fieldPath(path, key);
  if (!Array.isArray(value)) throw invalidField(at, 'must be an array of strings');
  value.forEach((item, i) => {
    if (typeof item !== 'string') throw invalidField(`${at}[${i}]`, 'must be a string');
  });
  return [...(value as string[])];
}

/**
 * Optional string→string map (annotations). Entries whose value is `null` are dropped, like
 * any other null. The result is a fresh object built with `Object.fromEntries`, so a
 * `__proto__` key stays an ordinary own key.
 */
export function optionalStringMap(obj: JsonObject, key: string, path: string): Record<string, string> | undefined {
  const value = optionalObject(obj, key, path);
  if (value === undefined) return undefined;
  const at = fieldPath(path, key);
  const entries = Object.entries(value).filter(([, item]) => item !== null);
  for (const [name, item] of entries) {
    if (typeof item !== 'string') throw invalidField(`${at}.${excerpt(name)}`, 'must be a string');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** U+0000 spelt as a JSON escape; a raw NUL cannot appear in valid JSON text, only this escape. */
const NUL_ESCAPE = '\\u0000';

/**
 * Throws {@link ManifestInvalidError} naming a key or string value of the parsed JSON `text`
 * that holds U+0000. PostgreSQL `text` and `jsonb` cannot store that
 * character and no image-spec field has a use for it, so it is refused anywhere, unknown fields
 * included. The walk runs only when `text` holds the escape, and it is iterative with paths cut
 * to an excerpt, so deeply nested input costs neither stack nor quadratic memory.
 */
export function refuseNulCharacters(text: string, value: unknown): void {
  if (!text.includes(NUL_ESCAPE)) return;
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, path] = next;
    if (typeof item === 'string') {
      if (item.includes('\0')) throw invalidField(path, 'contains a NUL character (U+0000)');
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], echoPath(path, `[${i}]`)]);
    } else if (isJsonObject(item)) {
      const entries = Object.entries(item);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const at = echoPath(path, `${path === '' ? '' : '.'}${key.replaceAll('\0', NUL_ESCAPE)}`);
        if (key.includes('\0')) throw invalidField(at, 'is a key that contains a NUL character (U+0000)');
        pending.push([child, at]);
      }
    }
  }
}

/** `path + step`, cut to an excerpt once too long to echo; an excerpt is not extended further. */
function echoPath(path: string, step: string): string {
  return path.endsWith('…') ? path : excerpt(path + step);
}
