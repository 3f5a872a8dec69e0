import { Inject, Injectable } from '@nestjs/common';
import {
  DigestInvalidError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  ManifestUnknownError,
  UnsupportedError,
  type RequestScope,
} from '@lading/contracts';
import { digestOf, isDigest, parseDigest, parseManifest, OCI_INDEX_MEDIA_TYPE, type DigestAlgorithm } from '@lading/manifest';
import {
  deleteEvent,
  manifestEvent,
  MetadataDb,
  PullEventBuffer,
  type ManifestLookup,
  type ReferrerRow,
  type StoredManifest,
} from '@lading/metadata-db';
import { LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { isValidTag, assertTag } from '@lading/reference';
import { repositoryOf } from '../scope';
import { ByteBudget } from './byte-budget';
import { ManifestCache } from './manifest.cache';
import { ReadBatch } from './read-batch';

/** The outcome of a manifest PUT. */
export interface PutManifestResult {
  digest: string;
  subject?: string;
}

/** One page of a referrers listing, and where the next starts when more remain. */
export interface ReferrersPage {
  index: object;
  next?: { last: string; n: number };
}

/** The most referrers one page lists, whatever `n` asks for. */
export const MAX_REFERRERS_PAGE = 1000;
/**
 * The most manifest GETs answered by one statement. Beyond a few dozen the statement's own time
 * grows with the batch and the round trip saved no longer matters.
 */
const MAX_LOOKUP_BATCH = 64;

/** A page stops early once its entries pass this many bytes of JSON (annotations can be large). */
export const MAX_REFERRERS_PAGE_BYTES = 4 * 1024 * 1024;

/** Manifests and tags: put, get, delete, referrers. Every method takes the request scope first. */
@Injectable()
export class ManifestService {
  /**
   * Bytes of manifest being parsed and stored at once (one manifest of the size limit, or any
   * number of smaller ones adding up to it). Each such PUT holds several transient copies of its
   * body (parsed JSON, the database driver's message, the database's own buffers), so concurrent
   * large PUTs would multiply the peak; waiting ones hold only their body.
   */
  private readonly writeBudget: ByteBudget;
  /**
   * Manifest GETs that miss the cache (all of them with several replicas, where it is off):
   * concurrent ones share one statement, each from a statement started after it arrived, so a
   * GET never misses a tag move or delete acknowledged before it (see ReadBatch).
   */
  private readonly lookups: ReadBatch<ManifestLookup, StoredManifest | undefined>;

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    private readonly cache: ManifestCache,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
    @Inject(PullEventBuffer) private readonly pulls: PullEventBuffer,
  ) {
    this.writeBudget = new ByteBudget(Math.max(1, this.maxManifestSize));
    this.lookups = new ReadBatch((keys) => this.db.read.manifests.findMany(keys), MAX_LOOKUP_BATCH);
  }

  /**
   * Records the pull event of a manifest GET that was served, with the tag when it was addressed
   * by one. In memory only: it is written with other pulls off the request's path.
   */
  manifestPulled(scope: RequestScope, reference: string, manifest: StoredManifest, url: string): void {
    this.pulls.record(scope, manifestEvent('pull', repositoryOf(scope), manifest, url, isDigest(reference) ? undefined : reference));
  }

  /** The size limit of one manifest, in bytes. */
  get maxManifestSize(): number {
    return this.config.validation.manifests.maxsize;
  }

  /**
   * Validates and stores `payload` under `reference` (a tag, or the digest it must hash to) in the
   * scope's repository, with its push event. Throws MANIFEST_INVALID, SIZE_INVALID (413),
   * DIGEST_INVALID, TAG_INVALID or MANIFEST_BLOB_UNKNOWN, and then nothing is stored.
   */
  async putManifest(
    scope: RequestScope,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    url: (digest: string) => string,
  ): Promise<PutManifestResult> {
    return this.writeBudget.run(payload.length, () => this.storeManifest(scope, reference, payload, contentType, url));
  }

  private async storeManifest(
    scope: RequestScope,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    url: (digest: string) => string,
  ): Promise<PutManifestResult> {
    const repository = repositoryOf(scope);
    const byDigest = reference.includes(':');
    const algorithm: DigestAlgorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
    if (!byDigest) assertTag(reference);
    if (contentType?.includes('\u0000')) throw new ManifestInvalidError('the Content-Type contains a NUL character');
    const parsed = parseManifest(payload, contentType, { maxSize: this.maxManifestSize });
    const digest = digestOf(payload, algorithm);
    if (byDigest && digest !== reference) {
      throw new DigestInvalidError('manifest digest did not match the reference', { expected: reference, actual: digest });
    }
    const tag = byDigest ? undefined : reference;
    await this.db.transaction(async (tx) => {
      const refused = await tx.manifests.putManifest({
        repository,
        digest,
        mediaType: parsed.mediaType,
        payload,
        configDigest: parsed.config?.digest ?? null,
        subjectDigest: parsed.subject?.digest ?? null,
        artifactType: parsed.referrerArtifactType ?? null,
        blobDigests: parsed.blobReferences.map((d) => d.digest),
        childDigests: parsed.childReferences.map((d) => d.digest),
        tag,
      });
      if (refused) throw new ManifestBlobUnknownError(refused.missing);
      await tx.outbox.append(scope, manifestEvent('push', repository, { digest, mediaType: parsed.mediaType, size: payload.length }, url(digest), tag));
    });
    return { digest, subject: parsed.subject?.digest };
  }

  /** The manifest by tag or digest; MANIFEST_UNKNOWN for anything else, malformed references included. */
  async getManifest(scope: RequestScope, reference: string): Promise<StoredManifest> {
    const repository = repositoryOf(scope);
    const cached = this.cache.get(repository, reference);
    if (cached) return cached;
    const generation = this.cache.generation(repository);
    const byDigest = isDigest(reference);
    const found = byDigest || isValidTag(reference) ? await this.lookups.get({ repository, reference, byDigest }) : undefined;
    if (!found) throw new ManifestUnknownError(reference);
    this.cache.set(repository, reference, found, generation);
    return found;
  }

  /** Deletes by digest (with its tags) or a single tag, with the delete event. */
  async deleteManifest(scope: RequestScope, reference: string): Promise<void> {
    if (!this.config.storage.delete.enabled) throw new UnsupportedError('deletes are disabled on this registry');
    const repository = repositoryOf(scope);
    const byDigest = isDigest(reference);
    if (!byDigest && !isValidTag(reference)) throw new ManifestUnknownError(reference);
    const deleted = await this.db.transaction(async (tx) => {
      if (byDigest) {
        const gone = await tx.manifests.deleteManifest(repository, reference);
        if (!gone) return false;
        await tx.outbox.append(scope, deleteEvent(repository, { digest: reference }));
      } else {
        const gone = await tx.tags.deleteTag(repository, reference);
        if (!gone) return false;
        await tx.outbox.append(scope, deleteEvent(repository, { tag: reference }));
      }
      return true;
    });
    if (!deleted) throw new ManifestUnknownError(reference);
  }

  /**
   * One page of the referrers index of `digest` in the scope's repository, optionally filtered by
   * artifact type: at most `n` (and MAX_REFERRERS_PAGE) entries after `last`, cut short once the
   * page passes MAX_REFERRERS_PAGE_BYTES, so one response stays bounded however many referrers
   * and annotations a subject has.
   */
  async listReferrers(
    scope: RequestScope,
    digest: string,
    options: { artifactType?: string; n: number | null; last?: string },
  ): Promise<ReferrersPage> {
    const d = parseDigest(digest).toString();
    if (options.artifactType?.includes('\u0000')) throw new ManifestInvalidError('artifactType contains a NUL character');
    if (options.last !== undefined && !isDigest(options.last)) throw new DigestInvalidError('last is not a digest', { last: options.last });
    const limit = Math.min(options.n ?? MAX_REFERRERS_PAGE, MAX_REFERRERS_PAGE);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [] as object[] };
    if (limit === 0) return { index };
    const rows = await this.db.read.manifests.listReferrers(repositoryOf(scope), d, {
      artifactType: options.artifactType,
      limit: limit + 1,
      last: options.last,
    });
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      if (i === limit) return { index, next: { last: rows[i - 1].digest, n: limit } };
      const entry = referrerEntry(rows[i]);
      const size = JSON.stringify(entry).length;
      if (index.manifests.length > 0 && bytes + size > MAX_REFERRERS_PAGE_BYTES) {
        return { index, next: { last: rows[i - 1].digest, n: limit } };
      }
      bytes += size;
      index.manifests.push(entry);
    }
    return { index };
  }
}

function referrerEntry(r: ReferrerRow): object {
  return {
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.size,
    ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: r.annotations } : {}),
  };
}
