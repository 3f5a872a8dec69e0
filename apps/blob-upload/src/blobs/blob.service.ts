import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { BlobUnknownError, RangeInvalidError, UnsupportedError, type RequestScope } from '@lading/contracts';
import { parseDigest } from '@lading/manifest';
import { blobEvent, deleteEvent, MetadataDb, PullEventBuffer, type LinkedBlob } from '@lading/metadata-db';
import { BLOB_STORAGE, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import type { BlobStorage } from '@lading/storage';
import { repositoryOf } from '../scope';

/** An open blob read: what it is, which bytes, and the stream of them. */
export interface BlobRead {
  blob: LinkedBlob;
  range?: { start: number; end: number };
  stream: Readable;
}

/**
 * How long a blob GET's redirect URL stays valid: the reference registry's 20 minutes. A client
 * follows a 307 at once; the URL only has to outlive a slow start of a large download.
 */
export const BLOB_REDIRECT_EXPIRY_SECONDS = 20 * 60;

/** Where a blob GET is sent instead of being streamed. */
export interface BlobRedirect {
  blob: LinkedBlob;
  url: string;
}

/** Blobs as a repository sees them: reachable only through a repository they are linked to. */
@Injectable()
export class BlobService {
  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    @Inject(BLOB_STORAGE) private readonly storage: BlobStorage,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
    @Inject(PullEventBuffer) private readonly pulls: PullEventBuffer,
  ) {}

  /**
   * Records the pull event of a blob GET that was served (streamed, in part or whole, or
   * redirected). In memory only: it is written with other pulls off the request's path.
   */
  blobPulled(scope: RequestScope, blob: LinkedBlob, url: string): void {
    this.pulls.record(scope, blobEvent('pull', repositoryOf(scope), blob, url));
  }

  /** The blob if linked to the scope's repository, else BLOB_UNKNOWN (whether or not it exists elsewhere). */
  async statBlob(scope: RequestScope, digest: string): Promise<LinkedBlob> {
    const d = parseDigest(digest).toString();
    const blob = await this.db.read.blobs.findLinked(repositoryOf(scope), d);
    if (!blob) throw new BlobUnknownError(d);
    return blob;
  }

  /**
   * A presigned storage URL to answer a GET of the blob with (307), or null when the bytes are to
   * be streamed: redirects disabled (`storage.redirect.disable`) or a driver that makes no URLs.
   * The link is checked first (BLOB_UNKNOWN as for any read); a `Range` header travels with the
   * client to the URL, which storage answers with 206 itself.
   */
  async redirectBlob(scope: RequestScope, digest: string): Promise<BlobRedirect | null> {
    if (this.config.storage.redirect.disable || !this.storage.blobUrl) return null;
    const blob = await this.statBlob(scope, digest);
    const url = await this.storage.blobUrl(blob.digest, BLOB_REDIRECT_EXPIRY_SECONDS);
    return url ? { blob, url } : null;
  }

  /** Opens the blob's bytes, the whole or an HTTP `Range: bytes=a-b` of them. */
  async openBlob(scope: RequestScope, digest: string, rangeHeader?: string): Promise<BlobRead> {
    const blob = await this.statBlob(scope, digest);
    const range = rangeHeader ? parseByteRange(rangeHeader, blob.size) : undefined;
    // A blob whose bytes are gone answers BLOB_UNKNOWN: storage errors carry their OCI codes.
    const stream = await this.storage.readBlob(blob.digest, range);
    return { blob, range, stream };
  }

  /** Unlinks the blob from the scope's repository (202); its bytes go when garbage collection finds them unused. */
  async deleteBlob(scope: RequestScope, digest: string): Promise<void> {
    if (!this.config.storage.delete.enabled) throw new UnsupportedError('deletes are disabled on this registry');
    const d = parseDigest(digest).toString();
    const repository = repositoryOf(scope);
    const deleted = await this.db.transaction(async (tx) => {
      const blob = await tx.blobs.unlinkBlob(repository, d);
      if (!blob) return false;
      await tx.outbox.append(scope, deleteEvent(repository, { digest: d }));
      return true;
    });
    if (!deleted) throw new BlobUnknownError(d);
  }
}

/**
 * Parses one `bytes=` range against `size` (suffix and open-ended forms too). Multiple ranges are
 * answered with the first; an unsatisfiable range is RANGE_INVALID (416).
 */
export function parseByteRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)(?:,.*)?$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // not a form we understand: whole body
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new RangeInvalidError(size, { range: header, size });
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw new RangeInvalidError(size, { range: header, size });
  return { start, end };
}
