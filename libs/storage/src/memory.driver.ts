import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobInfo, BlobStat, BlobStorage, ByteRange, UploadInfo, UploadPart, WritePartOptions, WritePartResult } from './blob-storage.port';
import { concatStreams, digestsOf, planPartWrite, resolveByteRange, sizeOfParts, slicesOf, withStagedBytes } from './blob-storage.support';
import {
  BLOBS_PREFIX,
  UPLOADS_PREFIX,
  blobDataKey,
  digestOfBlobDataKey,
  uploadIdOfKey,
  uploadPartKey,
  uploadPrefix,
  uploadStartedAtKey,
} from './storage.layout';
import { BlobNotFoundError, UploadNotFoundError } from './storage.error';

/** Configuration of `MemoryBlobStorage`. */
export interface MemoryBlobStorageOptions {
  /** The clock for `UploadInfo` and `BlobInfo` times and `currentTime`; defaults to the system clock. Tests pass a fake. */
  now?: () => Date;
  /** Staging threshold (see `UploadStore.minPartSize`); 0 by default. Tests set it to exercise staging. */
  minPartSize?: number;
}

/** Stored bytes as the chunks they arrived in; never mutated once stored, so reads can share them. */
interface StoredObject {
  chunks: Buffer[];
  size: number;
  /** When it was stored, by the driver's clock. */
  modified: Date;
}

/**
 * Blob storage in process memory, for tests and throwaway instances: an object map under the
 * keys of `storage.layout.ts`, with the same semantics as the other drivers, no durability.
 * Stored bytes are copied from the source, so callers may reuse their buffers.
 */
export class MemoryBlobStorage implements BlobStorage {
  /** {@inheritDoc BlobStorage.driverName} */
  readonly driverName = 'inmemory';
  /** {@inheritDoc UploadStore.minPartSize} */
  readonly minPartSize: number;
  private readonly objects = new Map<string, StoredObject>();
  private readonly now: () => Date;

  /** An empty store. */
  constructor(options: MemoryBlobStorageOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.minPartSize = options.minPartSize ?? 0;
  }

  /** Every key stored, sorted (for tests: what is left behind). */
  keys(): string[] {
    return [...this.objects.keys()].sort();
  }

  /** {@inheritDoc BlobReader.statBlob} */
  async statBlob(digest: string): Promise<BlobStat | null> {
    const blob = this.objects.get(blobDataKey(digest));
    return blob ? { size: blob.size } : null;
  }

  /** {@inheritDoc BlobReader.readBlob} */
  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const blob = this.objects.get(blobDataKey(digest));
    if (!blob) throw new BlobNotFoundError(digest);
    return streamOf(blob, resolveByteRange(range, blob.size));
  }

  /** {@inheritDoc BlobDeleter.deleteBlob} */
  async deleteBlob(digest: string): Promise<void> {
    this.objects.delete(blobDataKey(digest));
  }

  /** {@inheritDoc BlobDeleter.deleteBlobs} */
  async deleteBlobs(digests: readonly string[]): Promise<void> {
    const keys = digests.map(blobDataKey);
    for (const key of keys) this.objects.delete(key);
  }

  /** {@inheritDoc StorageEnumerator.listBlobs} */
  listBlobs(): AsyncIterable<string> {
    return digestsOf(this.listBlobInfo());
  }

  /** {@inheritDoc StorageEnumerator.listBlobInfo} */
  async *listBlobInfo(): AsyncIterable<BlobInfo> {
    // Data keys sort as their digests do (see storage.layout.ts).
    for (const key of [...this.objects.keys()].sort()) {
      const digest = key.startsWith(BLOBS_PREFIX) ? digestOfBlobDataKey(key) : undefined;
      const blob = digest ? this.objects.get(key) : undefined;
      if (digest && blob) yield { digest, size: blob.size, modified: blob.modified };
    }
  }

  /** {@inheritDoc StorageEnumerator.currentTime} */
  async currentTime(): Promise<Date> {
    return this.now();
  }

  /** {@inheritDoc UploadStore.createUpload} */
  async createUpload(id: string): Promise<void> {
    const key = uploadStartedAtKey(id);
    if (!this.objects.has(key)) this.objects.set(key, this.objectOf([Buffer.from(this.now().toISOString())]));
  }

  /** {@inheritDoc UploadStore.uploadExists} */
  async uploadExists(id: string): Promise<boolean> {
    return this.objects.has(uploadStartedAtKey(id));
  }

  /** {@inheritDoc UploadStore.writePart} */
  async writePart(
    id: string,
    parts: readonly UploadPart[],
    source: AsyncIterable<Buffer | Uint8Array>,
    options: WritePartOptions = {},
  ): Promise<WritePartResult> {
    const { keep, staged } = planPartWrite(parts, this.minPartSize);
    if (!(await this.uploadExists(id))) throw new UploadNotFoundError(id);
    const stagedBytes = staged ? await this.readUpload(id, [staged]) : undefined;
    const name = randomUUID();
    const key = uploadPartKey(id, name);
    const chunks: Buffer[] = [];
    for await (const chunk of withStagedBytes(stagedBytes, source, options)) chunks.push(Buffer.from(chunk));
    // Cancelled meanwhile: the part would be left under no upload.
    if (!(await this.uploadExists(id))) throw new UploadNotFoundError(id);
    const stored = this.objectOf(chunks);
    this.objects.set(key, stored);
    const all = [...keep, { name, size: stored.size }];
    return { parts: all, size: sizeOfParts(all), superseded: staged ? [staged] : [] };
  }

  /** {@inheritDoc UploadStore.readUpload} */
  async readUpload(id: string, parts: readonly UploadPart[], range?: ByteRange): Promise<Readable> {
    uploadPrefix(id);
    const slices = slicesOf(parts, resolveByteRange(range, sizeOfParts(parts)));
    const stored = slices.map((slice) => {
      const object = this.objects.get(uploadPartKey(id, slice.part.name));
      if (!object || object.size !== slice.part.size) throw new UploadNotFoundError(id);
      return object;
    });
    return concatStreams(slices.map((slice, i) => async () => streamOf(stored[i], slice)));
  }

  /** {@inheritDoc UploadStore.commitUpload} */
  async commitUpload(id: string, parts: readonly UploadPart[], digest: string): Promise<void> {
    uploadPrefix(id);
    const target = blobDataKey(digest);
    const size = sizeOfParts(parts);
    if (this.objects.get(target)?.size !== size) {
      const chunks: Buffer[] = [];
      for (const part of parts) {
        const object = this.objects.get(uploadPartKey(id, part.name));
        if (!object || object.size !== part.size) throw new UploadNotFoundError(id);
        chunks.push(...object.chunks);
      }
      this.objects.set(target, this.objectOf(chunks));
    }
    await this.deleteUpload(id);
  }

  /** {@inheritDoc UploadStore.deleteParts} */
  async deleteParts(id: string, parts: readonly UploadPart[]): Promise<void> {
    uploadPrefix(id);
    for (const part of parts) this.objects.delete(uploadPartKey(id, part.name));
  }

  /** {@inheritDoc UploadStore.deleteUpload} */
  async deleteUpload(id: string): Promise<void> {
    const prefix = uploadPrefix(id);
    for (const key of [...this.objects.keys()]) if (key.startsWith(prefix)) this.objects.delete(key);
  }

  /** {@inheritDoc StorageEnumerator.listUploads} */
  async *listUploads(): AsyncIterable<UploadInfo> {
    const ids = new Set<string>();
    for (const key of this.objects.keys()) {
      const id = key.startsWith(UPLOADS_PREFIX) ? uploadIdOfKey(key) : undefined;
      if (id) ids.add(id);
    }
    for (const id of ids) {
      const marker = this.objects.get(uploadStartedAtKey(id));
      const date = marker ? new Date(Buffer.concat(marker.chunks).toString()) : null;
      yield { id, startedAt: date && !Number.isNaN(date.getTime()) ? date : null };
    }
  }

  private objectOf(chunks: Buffer[]): StoredObject {
    return { chunks, size: chunks.reduce((n, c) => n + c.length, 0), modified: this.now() };
  }
}


/** Streams the inclusive `bounds` of a stored object without copying it. */
function streamOf(object: StoredObject, bounds: ByteRange): Readable {
  const pieces: Buffer[] = [];
  let offset = 0;
  for (const chunk of object.chunks) {
    const first = Math.max(bounds.start, offset);
    const last = Math.min(bounds.end, offset + chunk.length - 1);
    if (first <= last) pieces.push(chunk.subarray(first - offset, last - offset + 1));
    offset += chunk.length;
  }
  return Readable.from(pieces, { objectMode: false });
}
