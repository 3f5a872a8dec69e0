/*
 * The storage layout: every key any driver reads or writes is made here, so the filesystem, S3
 * and memory drivers cannot drift apart (as in the reference registry's `paths.go`). Keys are
 * relative, `/`-separated; the filesystem driver puts them under its root directory, the S3
 * driver under `rootdirectory` in its bucket.
 *
 *   <root>/
 *   ├── blobs/
 *   │   ├── sha256/
 *   │   │   └── ab/                          first two hex digits, so no prefix grows too big
 *   │   │       └── abcdef…(64 hex)/
 *   │   │           └── data                 the blob's bytes; present = committed (and verified)
 *   │   └── sha512/
 *   │       └── 12/
 *   │           └── 1234…(128 hex)/
 *   │               └── data
 *   ├── probes/
 *   │   └── <uuid>                           a moment's object that reads the storage's clock (`currentTime`)
 *   └── uploads/
 *       └── <upload uuid>/
 *           ├── startedat                    creation time, ISO 8601; present = the upload exists
 *           ├── parts/
 *           │   └── <part uuid>              one immutable part: written once, never rewritten
 *           └── multipart/
 *               └── <S3 multipart upload id> S3 only: a multipart upload in progress for this upload (a big
 *                                            part, or the blob's `data` a commit composes); holds its key, so
 *                                            removing the upload aborts one that a crash cut short
 *
 * The ordered list of an upload's parts is not here: the caller records it (the upload session
 * in the database), so a part that a dead writer left behind is never part of the upload. A
 * part's name is a fresh uuid per write, so two writers can never write the same key. The S3
 * driver's multipart uploads in progress are keyed the same way (a part, or a blob's `data`
 * while a commit composes it) and are aborted by exact key and upload id, each recorded under
 * `multipart/` when it starts: MinIO lists unfinished multipart uploads only by exact key, and
 * a compose at a blob's key lies outside the upload's prefix.
 */
import { InvalidStorageKeyError } from './storage.error';
import { checkUploadId, parseBlobDigest } from './blob-storage.support';

const PART_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The top-level prefix of committed blobs. */
export const BLOBS_PREFIX = 'blobs/';
/** The top-level prefix of uploads in progress. */
export const UPLOADS_PREFIX = 'uploads/';
/** The top-level prefix of clock probes: objects written to read the storage's time, removed at once. */
export const PROBES_PREFIX = 'probes/';

/**
 * The key of blob `digest`'s bytes.
 * @throws InvalidStorageKeyError when `digest` is not canonical.
 */
export function blobDataKey(digest: string): string {
  const { algorithm, hex } = parseBlobDigest(digest);
  return `${BLOBS_PREFIX}${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
}

/** The digest whose data key is `key`, or undefined when `key` is not one (for listings). */
export function digestOfBlobDataKey(key: string): string | undefined {
  const m = /^blobs\/(sha256|sha512)\/([0-9a-f]{2})\/([0-9a-f]+)\/data$/.exec(key);
  if (!m || !m[3].startsWith(m[2])) return undefined;
  const digest = `${m[1]}:${m[3]}`;
  try {
    parseBlobDigest(digest);
    return digest;
  } catch {
    return undefined;
  }
}

/**
 * The key of clock probe `id` (a fresh uuid per probe).
 * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
 */
export function clockProbeKey(id: string): string {
  return `${PROBES_PREFIX}${checkUploadId(id)}`;
}

/**
 * The prefix (ending in `/`) under which everything of upload `id` lives.
 * @throws InvalidStorageKeyError when `id` is not a lowercase uuid.
 */
export function uploadPrefix(id: string): string {
  return `${UPLOADS_PREFIX}${checkUploadId(id)}/`;
}

/** The key of upload `id`'s creation marker, which holds its start time. */
export function uploadStartedAtKey(id: string): string {
  return `${uploadPrefix(id)}startedat`;
}

/**
 * The key of part `name` of upload `id`.
 * @throws InvalidStorageKeyError when `id` or `name` is not a lowercase uuid.
 */
export function uploadPartKey(id: string, name: string): string {
  if (typeof name !== 'string' || !PART_NAME.test(name)) throw new InvalidStorageKeyError('uploadId', String(name));
  return `${uploadPrefix(id)}parts/${name}`;
}

/** The upload id a key under `uploads/` belongs to, or undefined (for listings). */
export function uploadIdOfKey(key: string): string | undefined {
  const m = /^uploads\/([0-9a-f-]{36})\//.exec(key);
  return m ? m[1] : undefined;
}

const MULTIPART_ID = /^[A-Za-z0-9._~+=-]{1,1024}$/;

/**
 * The key recording that upload `id` has S3 multipart upload `multipartId` in progress (its body
 * names the multipart upload's object key).
 * @throws InvalidStorageKeyError when `id` is not a lowercase uuid or `multipartId` is not a plain token.
 */
export function uploadMultipartKey(id: string, multipartId: string): string {
  if (!MULTIPART_ID.test(multipartId)) throw new InvalidStorageKeyError('uploadId', multipartId);
  return `${uploadPrefix(id)}multipart/${multipartId}`;
}

/** The multipart upload id of such a record's key (under `uploadPrefix(id)`), or undefined. */
export function multipartIdOfKey(id: string, key: string): string | undefined {
  const prefix = `${uploadPrefix(id)}multipart/`;
  return key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
}
