import { Inject, Injectable } from '@nestjs/common';
import {
  DigestInvalidError,
  ManifestUnknownError,
  UnsupportedError,
  type RequestContext,
} from '@lading/contracts';
import { digestOf, isDigest, parseDigest, parseManifest, OCI_INDEX_MEDIA_TYPE, type DigestAlgorithm } from '@lading/manifest';
import { LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { isValidTag, assertTag } from '@lading/reference';
import { ByteBudget } from './byte-budget';
import { ManifestCache } from './manifest.cache';
import { ManifestRepository, type StoredManifest } from './manifest.repository';

/** The outcome of a manifest PUT. */
export interface PutManifestResult {
  digest: string;
  subject?: string;
}

/** Manifests and tags: put, get, delete, referrers. */
@Injectable()
export class ManifestService {
  /**
   * Bytes of manifest being parsed and stored at once (one manifest of the size limit, or any
   * number of smaller ones adding up to it). Each such PUT holds several transient copies of its
   * body (parsed JSON, the database driver's message, the database's own buffers), so concurrent
   * large PUTs would multiply the peak; waiting ones hold only their body.
   */
  private readonly writeBudget: ByteBudget;

  constructor(
    private readonly manifests: ManifestRepository,
    private readonly cache: ManifestCache,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {
    this.writeBudget = new ByteBudget(Math.max(1, this.maxManifestSize));
  }

  /** The size limit of one manifest, in bytes. */
  get maxManifestSize(): number {
    return this.config.validation.manifests.maxsize;
  }

  /**
   * Validates and stores `payload` under `reference` (a tag, or the digest it must hash to).
   * Throws MANIFEST_INVALID, SIZE_INVALID (413), DIGEST_INVALID, TAG_INVALID or MANIFEST_BLOB_UNKNOWN.
   */
  async putManifest(
    name: string,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    request: RequestContext,
    url: (digest: string) => string,
  ): Promise<PutManifestResult> {
    return this.writeBudget.run(payload.length, () => this.storeManifest(name, reference, payload, contentType, request, url));
  }

  private async storeManifest(
    name: string,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    request: RequestContext,
    url: (digest: string) => string,
  ): Promise<PutManifestResult> {
    const byDigest = reference.includes(':');
    const algorithm: DigestAlgorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
    if (!byDigest) assertTag(reference);
    const parsed = parseManifest(payload, contentType, { maxSize: this.maxManifestSize });
    const digest = digestOf(payload, algorithm);
    if (byDigest && digest !== reference) {
      throw new DigestInvalidError('manifest digest did not match the reference', { expected: reference, actual: digest });
    }
    // Invalidate before (reads racing the write are not cached) and after (nor are reads that
    // started between the first bump and the commit).
    this.cache.invalidate(name);
    try {
      await this.manifests.putManifest({
        name,
        digest,
        payload,
        parsed,
        tag: byDigest ? undefined : reference,
        request,
        url: url(digest),
      });
    } finally {
      this.cache.invalidate(name);
    }
    return { digest, subject: parsed.subject?.digest };
  }

  /** The manifest by tag or digest; MANIFEST_UNKNOWN for anything else, malformed references included. */
  async getManifest(name: string, reference: string): Promise<StoredManifest> {
    const cached = this.cache.get(name, reference);
    if (cached) return cached;
    const generation = this.cache.generation(name);
    const found = isDigest(reference)
      ? await this.manifests.findManifest(name, { digest: reference })
      : isValidTag(reference)
        ? await this.manifests.findManifest(name, { tag: reference })
        : undefined;
    if (!found) throw new ManifestUnknownError(reference);
    this.cache.set(name, reference, found, generation);
    return found;
  }

  /** Deletes by digest (with its tags) or a single tag. */
  async deleteManifest(name: string, reference: string, request: RequestContext, url: string): Promise<void> {
    if (!this.config.storage.delete.enabled) throw new UnsupportedError('deletes are disabled on this registry');
    this.cache.invalidate(name);
    let deleted: boolean;
    try {
      deleted = isDigest(reference)
        ? await this.manifests.deleteManifest(name, reference, request, url)
        : isValidTag(reference)
          ? await this.manifests.deleteTag(name, reference, request)
          : false;
    } finally {
      this.cache.invalidate(name);
    }
    if (!deleted) throw new ManifestUnknownError(reference);
  }

  /** The referrers index of `digest` in `name`, optionally filtered by artifact type. */
  async listReferrers(name: string, digest: string, artifactType?: string): Promise<object> {
    const d = parseDigest(digest).toString();
    const rows = await this.manifests.findReferrers(name, d, artifactType);
    return {
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: rows.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    };
  }
}
