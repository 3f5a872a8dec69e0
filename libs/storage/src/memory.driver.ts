import { Readable } from 'node:stream';
import type { AppendOptions, BlobStat, BlobStorage, ByteRange, TruncateOptions, UploadInfo } from './blob-storage.port';
import {
  KeyedSerializer,
  checkUploadId,
  parseBlobDigest,
  readAppendSource,
  resolveByteRange,
} from './blob-storage.support';
import { BlobNotFoundError, UploadNotFoundError, UploadOffsetMismatchError } from './storage.error';

/** Configuration of `MemoryBlobStorage`. */
export interface MemoryBlobStorageOptions {
  /** The clock for `UploadInfo` times; defaults to the system clock. Tests pass a fake. */
  now?: () => Date;
}

/** Stored bytes as the chunks they arrived in; never mutated once stored, so reads can share them. */
interface Content {
  chunks: Buffer[];
  size: number;
}

interface Upload extends Content {
  startedAt: Date;
  modifiedAt: Date;
}

/**
 * Blob storage in process memory, for tests and throwaway instances: the same semantics as the
 * other drivers (keys, offsets, truncation on failure, ranges, idempotent deletes), no
 * durability. Stored bytes are copied from the source, so callers may reuse their buffers.
 */
export class MemoryBlobStorage implements BlobStorage {
  /** {@inheritDoc BlobStorage.driverName} */
  readonly driverName = 'inmemory';
  private readonly blobs = new Map<string, Content>();
  private readonly uploads = new Map<string, Upload>();
  private readonly uploadLocks = new KeyedSerializer();
  private readonly now: () => Date;

  /** An empty store. */
  constructor(options: MemoryBlobStorageOptions = {}) {
    this.now = options.now ?? (() => new Date());
  }

  /** {@inheritDoc BlobReader.statBlob} */
  async statBlob(digest: string): Promise<BlobStat | null> {
    parseBlobDigest(digest);
    const blob = this.blobs.get(digest);
    return blob ? { size: blob.size } : null;
  }

  /** {@inheritDoc BlobReader.readBlob} */
  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    parseBlobDigest(digest);
    const blob = this.blobs.get(digest);
    if (!blob) {
      throw new BlobNotFoundError(digest);
    }
    return streamContent(blob, range);
  }

  /** {@inheritDoc BlobDeleter.deleteBlob} */
  async deleteBlob(digest: string): Promise<void> {
    parseBlobDigest(digest);
    this.blobs.delete(digest);
  }

  /** {@inheritDoc StorageEnumerator.listBlobs} */
  async *listBlobs(): AsyncIterable<string> {
    yield* [...this.blobs.keys()];
  }

  /** {@inheritDoc BlobIngester.createUpload} */
  async createUpload(id: string): Promise<void> {
    checkUploadId(id);
    if (!this.uploads.has(id)) {
      const now = this.now();
      this.uploads.set(id, { chunks: [], size: 0, startedAt: now, modifiedAt: now });
    }
  }

  /** {@inheritDoc BlobIngester.uploadSize} */
  async uploadSize(id: string): Promise<number | null> {
    checkUploadId(id);
    return this.uploads.get(id)?.size ?? null;
  }

  /** {@inheritDoc BlobIngester.appendUpload} */
  async appendUpload(
    id: string,
    offset: number,
    source: AsyncIterable<Buffer | Uint8Array>,
    options: AppendOptions = {},
  ): Promise<number> {
    checkUploadId(id);
    return this.uploadLocks.run(id, async () => {
      const upload = this.requireUpload(id);
      if (upload.size !== offset) {
        throw new UploadOffsetMismatchError(id, offset, upload.size);
      }
      // Kept aside until the source ends, so a failure leaves the upload as it was.
      const appended: Buffer[] = [];
      let size = offset;
      for await (const chunk of readAppendSource(source, options.signal)) {
        const copy = Buffer.from(chunk);
        appended.push(copy);
        size += copy.length;
        options.onData?.(copy);
      }
      upload.chunks.push(...appended);
      upload.size = size;
      upload.modifiedAt = this.now();
      return size;
    });
  }

  /** {@inheritDoc BlobIngester.truncateUpload} */
  async truncateUpload(id: string, size: number, options: TruncateOptions = {}): Promise<number> {
    checkUploadId(id);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`cannot truncate upload ${id} to ${size} bytes`);
    }
    return this.uploadLocks.run(id, async () => {
      const upload = this.requireUpload(id);
      if (upload.size < size) {
        throw new UploadOffsetMismatchError(id, size, upload.size);
      }
      if (upload.size === size || this.now().getTime() - upload.modifiedAt.getTime() < (options.unchangedFor ?? 0)) {
        return upload.size;
      }
      // Stored chunks are shared with readers, so the cut one is sliced, not changed in place.
      const kept: Buffer[] = [];
      let keptSize = 0;
      for (const chunk of upload.chunks) {
        if (keptSize >= size) break;
        const piece = chunk.subarray(0, Math.min(chunk.length, size - keptSize));
        kept.push(piece);
        keptSize += piece.length;
      }
      upload.chunks = kept;
      upload.size = size;
      upload.modifiedAt = this.now();
      return size;
    });
  }

  /** {@inheritDoc BlobIngester.readUpload} */
  async readUpload(id: string, range?: ByteRange): Promise<Readable> {
    checkUploadId(id);
    return streamContent(this.requireUpload(id), range);
  }

  /** {@inheritDoc BlobIngester.commitUpload} */
  async commitUpload(id: string, digest: string): Promise<void> {
    checkUploadId(id);
    parseBlobDigest(digest);
    await this.uploadLocks.run(id, async () => {
      const upload = this.requireUpload(id);
      // Same rule as the filesystem driver: a stored blob of another size is damaged, replace it.
      if (this.blobs.get(digest)?.size !== upload.size) {
        this.blobs.set(digest, { chunks: upload.chunks, size: upload.size });
      }
      this.uploads.delete(id);
    });
  }

  /** {@inheritDoc BlobIngester.deleteUpload} */
  async deleteUpload(id: string): Promise<void> {
    checkUploadId(id);
    this.uploads.delete(id);
  }

  /** {@inheritDoc StorageEnumerator.listUploads} */
  async *listUploads(): AsyncIterable<UploadInfo> {
    for (const [id, upload] of [...this.uploads]) {
      yield { id, size: upload.size, startedAt: upload.startedAt };
    }
  }

  private requireUpload(id: string): Upload {
    const upload = this.uploads.get(id);
    if (!upload) {
      throw new UploadNotFoundError(id);
    }
    return upload;
  }
}

/** Streams `range` of the content as it is now, chunk by chunk, without copying. */
function streamContent(content: Content, range: ByteRange | undefined): Readable {
  const { start, end } = resolveByteRange(range, content.size);
  const chunks = content.chunks.slice();
  function* slices(): Generator<Buffer> {
    let chunkStart = 0;
    for (const chunk of chunks) {
      const chunkEnd = chunkStart + chunk.length;
      if (chunkEnd > start && chunkStart <= end) {
        yield chunk.subarray(Math.max(start - chunkStart, 0), Math.min(end + 1 - chunkStart, chunk.length));
      }
      if (chunkEnd > end) {
        return;
      }
      chunkStart = chunkEnd;
    }
  }
  return Readable.from(slices(), { objectMode: false });
}
