/*
 * Blob storage in an S3-compatible bucket (AWS S3, MinIO) through the `minio` client, under the
 * keys of `storage.layout.ts` below `rootdirectory`.
 *
 * Writes. A part is one object, written once under a fresh name: a source of up to `chunkSize`
 * bytes is one PUT; a longer one becomes a multipart upload of that object, `chunkSize` bytes
 * buffered at a time (the memory one streaming write holds). If the write fails, its multipart
 * upload is aborted by exact key (object name + upload id), so nothing of it remains. Every
 * multipart upload (a big part, or a commit's compose) is recorded under its upload when it
 * starts (`uploads/<id>/multipart/<upload id>`, holding its key): a writer that dies half way
 * leaves that record, and through it `deleteUpload` aborts the unfinished multipart upload,
 * since MinIO lists unfinished multipart uploads by exact key only (or for a whole bucket),
 * never by a shorter prefix as S3 does.
 *
 * Commit. The blob is composed server-side from the recorded parts: a multipart upload at the
 * blob's key whose parts are copies (`UploadPartCopy`, each guarded by the part's ETag) of the
 * upload's parts, so the bytes never pass through the registry. The caller verified their
 * digest before; S3 makes the key visible only when the multipart upload completes, holding
 * every byte, and the result's size is checked. Staging (see the port) keeps every part but
 * the last at least `chunkSize` (≥ 5 MiB), which `UploadPartCopy` needs.
 *
 * State. Nothing of an upload lives in this process: the part list is the caller's (the
 * database), the bytes are objects. Listings serve only the enumerator (`listBlobs`,
 * `listBlobInfo`, `listUploads`, `currentTime`) and `deleteUpload` (which removes whatever is
 * under the upload's prefix, unfinished multipart uploads included); every other operation uses
 * exact keys.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import { crashPoint } from '@lading/contracts';
import type { BlobInfo, BlobStat, BlobStorage, ByteRange, UploadInfo, UploadPart, WritePartOptions, WritePartResult } from './blob-storage.port';
import { concatStreams, digestsOf, planPartWrite, resolveByteRange, sizeOfParts, slicesOf, withStagedBytes } from './blob-storage.support';
import {
  BLOBS_PREFIX,
  UPLOADS_PREFIX,
  blobDataKey,
  clockProbeKey,
  multipartIdOfKey,
  digestOfBlobDataKey,
  uploadMultipartKey,
  uploadIdOfKey,
  uploadPartKey,
  uploadPrefix,
  uploadStartedAtKey,
} from './storage.layout';
import { BlobNotFoundError, UploadNotFoundError } from './storage.error';

/** The smallest part S3 accepts in a multipart upload, except the last. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
/** The largest part (and copied range) S3 accepts. */
const S3_MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** The most keys one S3 DeleteObjects request may name. */
const S3_DELETE_BATCH = 1000;
/** The reference registry's default `chunksize`. */
export const S3_DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024;

/** Configuration of `S3BlobStorage`, in the reference registry's `storage.s3` terms. */
export interface S3BlobStorageOptions {
  /** Access key; with `secretKey`. */
  accessKey?: string;
  secretKey?: string;
  /** The bucket's region (`us-east-1` for MinIO). */
  region: string;
  /** Endpoint URL (`http://127.0.0.1:9000`) for S3-compatible services; AWS when absent. */
  regionEndpoint?: string;
  bucket: string;
  /** Key prefix inside the bucket; empty for the bucket's root. */
  rootDirectory?: string;
  /** Path-style requests (`endpoint/bucket/key`), as MinIO needs; default true with an endpoint. */
  forcePathStyle?: boolean;
  /** HTTPS when the endpoint names no scheme; default true. */
  secure?: boolean;
  /** Part size of writes and the staging threshold, ≥ 5 MiB; default 10 MiB. */
  chunkSize?: number;
}

/** Blob storage in an S3 bucket; blobs and uploads share the bucket under one layout. */
export class S3BlobStorage implements BlobStorage {
  /** {@inheritDoc BlobStorage.driverName} */
  readonly driverName = 's3';
  /** {@inheritDoc UploadStore.minPartSize} */
  readonly minPartSize: number;
  private readonly client: Client;
  private readonly bucket: string;
  private readonly root: string;

  /** Touches nothing until the first call. @throws RangeError when `chunkSize` is below 5 MiB. */
  constructor(options: S3BlobStorageOptions) {
    const chunkSize = options.chunkSize ?? S3_DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < S3_MIN_PART_SIZE || chunkSize > S3_MAX_PART_SIZE) {
      throw new RangeError(`s3 chunksize must be between 5 MiB and 5 GiB, got ${chunkSize}`);
    }
    this.minPartSize = chunkSize;
    this.bucket = options.bucket;
    const root = (options.rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.root = root === '' ? '' : `${root}/`;
    const endpoint = options.regionEndpoint ? parseEndpoint(options.regionEndpoint, options.secure ?? true) : undefined;
    this.client = new Client({
      endPoint: endpoint?.host ?? 's3.amazonaws.com',
      port: endpoint?.port,
      useSSL: endpoint?.secure ?? options.secure ?? true,
      accessKey: options.accessKey ?? '',
      secretKey: options.secretKey ?? '',
      region: options.region,
      pathStyle: options.forcePathStyle ?? endpoint !== undefined,
      partSize: chunkSize,
    });
  }

  /** Every object key under the root (relative to it) and `multipart:<key>` per unfinished multipart upload; for tests. */
  async keys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const item of this.client.listObjectsV2(this.bucket, this.root, true)) {
      if (item.name) keys.push(item.name.slice(this.root.length));
    }
    // The whole bucket's: MinIO lists unfinished multipart uploads only by exact key or all of them.
    for await (const upload of this.multipartUploads('')) {
      if (upload.key.startsWith(this.root)) keys.push(`multipart:${upload.key.slice(this.root.length)}`);
    }
    return keys.sort();
  }

  /** {@inheritDoc BlobReader.statBlob} */
  async statBlob(digest: string): Promise<BlobStat | null> {
    const stat = await this.stat(blobDataKey(digest));
    return stat ? { size: stat.size } : null;
  }

  /** {@inheritDoc BlobReader.readBlob} */
  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const key = blobDataKey(digest);
    const stat = await this.stat(key);
    if (!stat) throw new BlobNotFoundError(digest);
    const stream = await this.open(key, resolveByteRange(range, stat.size));
    if (!stream) throw new BlobNotFoundError(digest);
    return stream;
  }

  /** {@inheritDoc BlobReader.blobUrl} */
  async blobUrl(digest: string, expiresInSeconds: number): Promise<string | null> {
    return this.client.presignedGetObject(this.bucket, this.root + blobDataKey(digest), expiresInSeconds);
  }

  /** {@inheritDoc BlobDeleter.deleteBlob} */
  async deleteBlob(digest: string): Promise<void> {
    await this.client.removeObject(this.bucket, this.root + blobDataKey(digest));
  }

  /** {@inheritDoc BlobDeleter.deleteBlobs} */
  async deleteBlobs(digests: readonly string[]): Promise<void> {
    const keys = digests.map((d) => this.root + blobDataKey(d));
    for (let i = 0; i < keys.length; i += S3_DELETE_BATCH) {
      const results = await this.client.removeObjects(this.bucket, keys.slice(i, i + S3_DELETE_BATCH));
      // A key that was not there is no error in S3; anything else is.
      const failed = results.filter((r) => r?.Error && r.Error.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`removing ${failed.length} blobs failed: ${failed[0]!.Error!.Code}: ${failed[0]!.Error!.Message}`);
    }
  }

  /** {@inheritDoc StorageEnumerator.listBlobs} */
  listBlobs(): AsyncIterable<string> {
    return digestsOf(this.listBlobInfo());
  }

  /** {@inheritDoc StorageEnumerator.listBlobInfo} */
  async *listBlobInfo(): AsyncIterable<BlobInfo> {
    // S3 lists keys in UTF-8 binary order, and data keys sort as their digests do (see storage.layout.ts).
    for await (const item of this.client.listObjectsV2(this.bucket, this.root + BLOBS_PREFIX, true)) {
      const digest = item.name ? digestOfBlobDataKey(item.name.slice(this.root.length)) : undefined;
      if (digest) yield { digest, size: item.size, modified: item.lastModified };
    }
  }

  /** {@inheritDoc StorageEnumerator.currentTime} */
  async currentTime(): Promise<Date> {
    const key = this.root + clockProbeKey(randomUUID());
    await this.client.putObject(this.bucket, key, Buffer.alloc(0), 0);
    try {
      // From a listing, as listBlobInfo reads times: a HEAD's Last-Modified has whole seconds only.
      for await (const item of this.client.listObjectsV2(this.bucket, key, false)) {
        if (item.name === key) return item.lastModified;
      }
      throw new Error(`s3: the clock probe ${key} was not listed`);
    } finally {
      await this.client.removeObject(this.bucket, key);
    }
  }

  /** {@inheritDoc UploadStore.createUpload} */
  async createUpload(id: string): Promise<void> {
    const key = uploadStartedAtKey(id);
    if (await this.stat(key)) return;
    await this.client.putObject(this.bucket, this.root + key, Buffer.from(new Date().toISOString()));
  }

  /** {@inheritDoc UploadStore.uploadExists} */
  async uploadExists(id: string): Promise<boolean> {
    return (await this.stat(uploadStartedAtKey(id))) !== null;
  }

  /** {@inheritDoc UploadStore.writePart} */
  async writePart(
    id: string,
    parts: readonly UploadPart[],
    source: AsyncIterable<Buffer | Uint8Array>,
    options: WritePartOptions = {},
  ): Promise<WritePartResult> {
    const { keep, staged } = planPartWrite(parts, this.minPartSize);
    const name = randomUUID();
    const key = uploadPartKey(id, name);
    if (!(await this.uploadExists(id))) throw new UploadNotFoundError(id);
    const stagedBytes = staged ? await this.readUpload(id, [staged]) : undefined;
    try {
      const part = await this.writeObject(id, key, withStagedBytes(stagedBytes, source, options));
      const all = [...keep, { name, ...part }];
      return { parts: all, size: sizeOfParts(all), superseded: staged ? [staged] : [] };
    } finally {
      stagedBytes?.destroy();
    }
  }

  /** {@inheritDoc UploadStore.readUpload} */
  async readUpload(id: string, parts: readonly UploadPart[], range?: ByteRange): Promise<Readable> {
    uploadPrefix(id);
    const slices = slicesOf(parts, resolveByteRange(range, sizeOfParts(parts)));
    const keys = slices.map((slice) => uploadPartKey(id, slice.part.name));
    // Every part is checked now, so a missing one fails before the first byte is read.
    for (const [i, key] of keys.entries()) {
      if ((await this.stat(key))?.size !== slices[i].part.size) throw new UploadNotFoundError(id);
    }
    return concatStreams(
      slices.map((slice, i) => async () => {
        const stream = await this.open(keys[i], slice);
        if (!stream) throw new UploadNotFoundError(id);
        return stream;
      }),
    );
  }

  /** {@inheritDoc UploadStore.commitUpload} */
  async commitUpload(id: string, parts: readonly UploadPart[], digest: string): Promise<void> {
    uploadPrefix(id);
    const target = blobDataKey(digest);
    const sources = parts.map((part) => ({ key: uploadPartKey(id, part.name), part }));
    const size = sizeOfParts(parts);
    if ((await this.stat(target))?.size !== size) {
      await this.compose(
        id,
        target,
        sources.filter((s) => s.part.size > 0),
      );
      if ((await this.stat(target))?.size !== size) throw new Error(`blob ${digest}: composed object does not hold ${size} bytes`);
    }
    await this.deleteUpload(id);
  }

  /** {@inheritDoc UploadStore.deleteParts} */
  async deleteParts(id: string, parts: readonly UploadPart[]): Promise<void> {
    uploadPrefix(id);
    const keys = parts.map((part) => this.root + uploadPartKey(id, part.name));
    if (keys.length > 0) await this.client.removeObjects(this.bucket, keys);
  }

  /** {@inheritDoc UploadStore.deleteUpload} */
  async deleteUpload(id: string): Promise<void> {
    const prefix = this.root + uploadPrefix(id);
    for await (const upload of this.multipartUploads(prefix)) {
      await this.client.abortMultipartUpload(this.bucket, upload.key, upload.uploadId);
    }
    const keys: string[] = [];
    for await (const item of this.client.listObjectsV2(this.bucket, prefix, true)) if (item.name) keys.push(item.name);
    // Multipart uploads of this upload that a crash cut short (or that completed: aborting is then a no-op).
    for (const key of keys) {
      const multipartId = multipartIdOfKey(id, key.slice(this.root.length));
      if (multipartId === undefined) continue;
      const target = await this.readSmall(key.slice(this.root.length));
      if (target) await this.client.abortMultipartUpload(this.bucket, this.root + target, multipartId).catch(ignoreMissing);
    }
    // The marker last: until it goes, the upload is still listed and so still purged.
    const marker = this.root + uploadStartedAtKey(id);
    const rest = keys.filter((k) => k !== marker);
    for (let i = 0; i < rest.length; i += S3_DELETE_BATCH) await this.client.removeObjects(this.bucket, rest.slice(i, i + S3_DELETE_BATCH));
    await this.client.removeObject(this.bucket, marker);
  }

  /** {@inheritDoc StorageEnumerator.listUploads} */
  async *listUploads(): AsyncIterable<UploadInfo> {
    const ids = new Set<string>();
    for await (const item of this.client.listObjectsV2(this.bucket, this.root + UPLOADS_PREFIX, true)) {
      const id = item.name ? uploadIdOfKey(item.name.slice(this.root.length)) : undefined;
      if (id) ids.add(id);
    }
    for await (const upload of this.multipartUploads(this.root + UPLOADS_PREFIX)) {
      const id = uploadIdOfKey(upload.key.slice(this.root.length));
      if (id) ids.add(id);
    }
    for (const id of ids) yield { id, startedAt: await this.readStartedAt(id) };
  }

  /**
   * The unfinished multipart uploads whose keys start with `prefix` (full key), page by page.
   * Not the client's `listIncompleteUploads`: it asks for each upload's parts as well, and fails
   * the whole listing when one completes meanwhile. (MinIO answers a prefix that is not an exact
   * key with nothing, which is why every multipart upload is also recorded under its upload.)
   */
  private async *multipartUploads(prefix: string): AsyncIterable<{ key: string; uploadId: string }> {
    let keyMarker = '';
    let uploadIdMarker = '';
    for (;;) {
      const page = await this.client.listIncompleteUploadsQuery(this.bucket, prefix, keyMarker, uploadIdMarker, '');
      for (const upload of page.uploads) yield { key: upload.key, uploadId: String(upload.uploadId) };
      if (!page.isTruncated) return;
      keyMarker = page.nextKeyMarker;
      uploadIdMarker = page.nextUploadIdMarker;
    }
  }

  /** Writes `bytes` as the object `key`: one PUT up to a chunk, else a multipart upload aborted on failure. */
  private async writeObject(id: string, key: string, bytes: AsyncIterable<Buffer>): Promise<{ size: number; etag: string }> {
    const name = this.root + key;
    let buffered: Buffer[] = [];
    let bufferedSize = 0;
    let size = 0;
    let uploadId: string | undefined;
    const etags: { part: number; etag: string }[] = [];
    const flush = async () => {
      uploadId ??= await this.startMultipart(id, key);
      const part = etags.length + 1;
      const payload = Buffer.concat(buffered, bufferedSize);
      buffered = [];
      bufferedSize = 0;
      const result = await this.client.uploadPart({ bucketName: this.bucket, objectName: name, uploadID: uploadId, partNumber: part, headers: {} }, payload);
      etags.push({ part, etag: result.etag });
    };
    try {
      for await (const chunk of bytes) {
        buffered.push(chunk);
        bufferedSize += chunk.length;
        size += chunk.length;
        if (bufferedSize >= this.minPartSize) await flush();
      }
      if (uploadId === undefined) {
        const result = await this.client.putObject(this.bucket, name, Buffer.concat(buffered, bufferedSize), bufferedSize, {
          'Content-Type': 'application/octet-stream',
        });
        return { size, etag: result.etag };
      }
      if (bufferedSize > 0) await flush();
      const result = await this.client.completeMultipartUpload(this.bucket, name, uploadId, etags);
      return { size, etag: result.etag };
    } catch (error) {
      if (uploadId !== undefined) await this.client.abortMultipartUpload(this.bucket, name, uploadId).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Makes `target` the concatenation of `sources` server-side: a multipart upload of copied
   * ranges (≤ 5 GiB each), each guarded by the source's ETag; aborted if any copy fails.
   */
  private async compose(id: string, target: string, sources: { key: string; part: UploadPart }[]): Promise<void> {
    const name = this.root + target;
    if (sources.length === 0) {
      await this.client.putObject(this.bucket, name, Buffer.alloc(0), 0, { 'Content-Type': 'application/octet-stream' });
      return;
    }
    const uploadId = await this.startMultipart(id, target);
    try {
      const etags: { part: number; etag: string }[] = [];
      for (const { key, part } of sources) {
        for (let start = 0; start < part.size; start += S3_MAX_PART_SIZE) {
          const end = Math.min(part.size, start + S3_MAX_PART_SIZE) - 1;
          const headers: Record<string, string> = {
            'x-amz-copy-source': encodeURI(`/${this.bucket}/${this.root}${key}`),
            'x-amz-copy-source-range': `bytes=${start}-${end}`,
          };
          if (part.etag) headers['x-amz-copy-source-if-match'] = part.etag;
          const number = etags.length + 1;
          const result = await this.client.uploadPart({ bucketName: this.bucket, objectName: name, uploadID: uploadId, partNumber: number, headers });
          etags.push({ part: number, etag: result.etag });
        }
      }
      crashPoint('storage.compose.started');
      await this.client.completeMultipartUpload(this.bucket, name, uploadId, etags);
    } catch (error) {
      await this.client.abortMultipartUpload(this.bucket, name, uploadId).catch(() => undefined);
      if (isMissing(error) || hasCode(error, ['PreconditionFailed'])) throw new UploadNotFoundError(id);
      throw error;
    }
  }

  /**
   * Starts a multipart upload of `key` (relative) for upload `id` and records it under the
   * upload, so that removing the upload aborts it if a crash cuts it short: nothing else leads
   * to it (MinIO lists unfinished multipart uploads only by exact key), and it holds bytes (a
   * compose at a blob's key holds a copy of every part). A crash between the two calls can still
   * leave one; the window is one small PUT.
   */
  private async startMultipart(id: string, key: string): Promise<string> {
    const multipartId = await this.client.initiateNewMultipartUpload(this.bucket, this.root + key, { 'Content-Type': 'application/octet-stream' });
    await this.client.putObject(this.bucket, this.root + uploadMultipartKey(id, multipartId), Buffer.from(key), undefined, {
      'Content-Type': 'text/plain',
    });
    return multipartId;
  }

  private async readStartedAt(id: string): Promise<Date | null> {
    const text = await this.readSmall(uploadStartedAtKey(id));
    if (text === null) return null;
    const date = new Date(text.trim());
    return Number.isNaN(date.getTime()) ? null : date;
  }

  /** The text of a small object of ours (a marker), or null when it does not exist. */
  private async readSmall(key: string): Promise<string | null> {
    const stream = await this.open(key);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  }

  /** The object's size, or null when it does not exist. */
  private async stat(key: string): Promise<{ size: number } | null> {
    try {
      const stat = await this.client.statObject(this.bucket, this.root + key);
      return { size: stat.size };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /** Opens `bounds` of the object (all of it without), or null when it does not exist. */
  private async open(key: string, bounds?: ByteRange): Promise<Readable | null> {
    if (bounds && bounds.end < bounds.start) return Readable.from([], { objectMode: false });
    try {
      if (!bounds) return await this.client.getObject(this.bucket, this.root + key);
      return await this.client.getPartialObject(this.bucket, this.root + key, bounds.start, bounds.end - bounds.start + 1);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }
}

/** Host, port and scheme of a `regionendpoint` (`http://host:port`, or `host:port` with `secure`). */
function parseEndpoint(endpoint: string, secure: boolean): { host: string; port?: number; secure: boolean } {
  const url = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `${secure ? 'https' : 'http'}://${endpoint}`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : undefined,
    secure: url.protocol === 'https:',
  };
}

/** Swallows the error of a delete or abort of something already gone. */
function ignoreMissing(error: unknown): void {
  if (!isMissing(error)) throw error;
}

function isMissing(error: unknown): boolean {
  return hasCode(error, ['NoSuchKey', 'NotFound', 'NoSuchUpload']);
}

function hasCode(error: unknown, codes: readonly string[]): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && codes.includes(code);
}
