import { loadPayload, smallPayloadSql, storedManifestAnnotations } from '../manifest-payload';
import type { Queryer } from '../queryer';
import type { BlobStore } from './blob.store';
import type { GcStore } from './gc.store';
import type { RepositoryStore } from './repository.store';

/** A stored manifest, exact bytes included. */
export interface StoredManifest {
  digest: string;
  mediaType: string;
  payload: Buffer;
  size: number;
}

/** A manifest that names another as its subject, as the referrers API lists it. */
export interface ReferrerRow {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: Readonly<Record<string, string>> | null;
}

/** One manifest to find: in `repository`, by tag or (`byDigest`) by digest. */
export interface ManifestLookup {
  repository: string;
  reference: string;
  byDigest: boolean;
}

/** What a manifest PUT stores. */
export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  payload: Buffer;
  configDigest: string | null;
  subjectDigest: string | null;
  artifactType: string | null;
  /** Blobs it references (config, layers): must be linked to the repository. */
  blobDigests: string[];
  /** Manifests it references (an index's children): must be in the repository. */
  childDigests: string[];
  /** The tag to point at it, for a PUT by tag. */
  tag?: string;
}

/** Why a manifest could not be stored: the first reference the repository does not have. */
export interface MissingReference {
  missing: string;
}

/** Told of every write that may change what a repository's manifests and tags resolve to. */
export type ManifestsChanged = (repository: string) => void;

/** The manifests, manifest_references and tags rows of each repository. */
export class ManifestStore {
  constructor(
    private readonly q: Queryer,
    private readonly repositories: RepositoryStore,
    private readonly blobs: BlobStore,
    private readonly gc: GcStore,
    private readonly changed: ManifestsChanged,
  ) {}

  /**
   * Stores a manifest, its references and its tag. Call inside a transaction. GC's review rows
   * of everything it keeps alive are locked first when due soon. Everything it
   * references must be in the repository, checked with the rows locked (`FOR KEY SHARE`) so a
   * concurrent blob or child delete cannot slip in between the check and the commit; the
   * manifest row itself is upserted and so locked, so a concurrent DELETE of the same digest
   * waits instead of pulling the row from under the tag. Returns the first missing reference
   * (and writes nothing) when one is absent.
   */
  async putManifest(m: ManifestRecord): Promise<MissingReference | undefined> {
    this.changed(m.repository);
    const repositoryId = await this.repositories.ensureForManifest(m.repository);
    // GC's review rows of what this manifest keeps alive, first (see GcStore.lockDueReviews):
    // its blobs, its children, itself (tagged now, or pushed again) and referrers waiting for it.
    await this.gc.lockDueReviews(repositoryId, { blobDigests: m.blobDigests, manifestDigests: [...m.childDigests, m.digest], subjectOf: m.digest });
    const linked = await this.blobs.lockLinked(repositoryId, m.blobDigests);
    const blobMissing = m.blobDigests.find((d) => !linked.has(d));
    if (blobMissing) return { missing: blobMissing };
    if (m.childDigests.length > 0) {
      const { rows } = await this.q.query<{ digest: string }>(
        'SELECT digest FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[]) FOR KEY SHARE',
        [repositoryId, m.childDigests],
      );
      const have = new Set(rows.map((r) => r.digest));
      const childMissing = m.childDigests.find((d) => !have.has(d));
      if (childMissing) return { missing: childMissing };
    }
    const { rows } = await this.q.query<{ id: number; inserted: boolean }>(
      // The annotations stay in the payload, stored once (see manifest-payload.ts).
      `INSERT INTO manifests (repository_id, digest, media_type, payload, size, config_digest, subject_digest, artifact_type)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (repository_id, digest) DO UPDATE SET media_type = manifests.media_type
       RETURNING id, (xmax = 0) AS inserted`,
      [
        repositoryId,
        m.digest,
        m.mediaType,
        m.payload,
        m.payload.length,
        m.configDigest,
        m.subjectDigest,
        m.artifactType,
      ],
    );
    const { id: manifestId, inserted } = rows[0];
    if (inserted && m.blobDigests.length + m.childDigests.length > 0) {
      await this.q.query(
        `INSERT INTO manifest_references (manifest_id, kind, digest)
         SELECT $1::bigint, 'blob', unnest($2::text[]) UNION SELECT $1::bigint, 'manifest', unnest($3::text[])
         ON CONFLICT DO NOTHING`,
        [manifestId, m.blobDigests, m.childDigests],
      );
    }
    if (m.tag !== undefined) {
      await this.q.query(
        `INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = EXCLUDED.manifest_id, updated_at = now()`,
        [repositoryId, m.tag, manifestId],
      );
    }
    return undefined;
  }

  /** The manifest `digest` of repository `name`, or undefined. */
  async findByDigest(name: string, digest: string): Promise<StoredManifest | undefined> {
    return (await this.findMany([{ repository: name, reference: digest, byDigest: true }]))[0];
  }

  /** The manifest tag `tag` of repository `name` points at, or undefined. */
  async findByTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    return (await this.findMany([{ repository: name, reference: tag, byDigest: false }]))[0];
  }

  /**
   * The manifests of `lookups` in one statement, in their order (undefined where there is none),
   * so that many concurrent GETs pay one round trip. Every answer is as of the statement's start:
   * it sees every write committed before the call.
   */
  async findMany(lookups: readonly ManifestLookup[]): Promise<(StoredManifest | undefined)[]> {
    const byTag: LookupColumns = { i: [], repository: [], reference: [] };
    const byDigest: LookupColumns = { i: [], repository: [], reference: [] };
    lookups.forEach((l, i) => {
      const side = l.byDigest ? byDigest : byTag;
      side.i.push(i);
      side.repository.push(l.repository);
      side.reference.push(l.reference);
    });
    const columns = `q.i, m.id, m.digest, m.media_type AS "mediaType", ${smallPayloadSql('m')} AS payload, m.size`;
    const { rows } = await this.q.query<PayloadRow & { i: number }>(
      `SELECT ${columns} FROM unnest($1::int[], $2::text[], $3::text[]) AS q(i, repository, reference)
         JOIN repositories r ON r.name = q.repository
         JOIN tags t ON t.repository_id = r.id AND t.name = q.reference JOIN manifests m ON m.id = t.manifest_id
       UNION ALL
       SELECT ${columns} FROM unnest($4::int[], $5::text[], $6::text[]) AS q(i, repository, reference)
         JOIN repositories r ON r.name = q.repository JOIN manifests m ON m.repository_id = r.id AND m.digest = q.reference`,
      [byTag.i, byTag.repository, byTag.reference, byDigest.i, byDigest.repository, byDigest.reference],
    );
    const found: (StoredManifest | undefined)[] = new Array(lookups.length).fill(undefined);
    // One large payload at a time (read in slices); small ones came inline.
    for (const row of rows) found[row.i] = await this.withPayload(row);
    return found;
  }

  /** Deletes a manifest by digest (its tags and references go with it); what it was, or undefined when unknown. */
  async deleteManifest(name: string, digest: string): Promise<{ mediaType: string; size: number } | undefined> {
    this.changed(name);
    const { rows } = await this.q.query<{ media_type: string; size: number }>(
      `DELETE FROM manifests m USING repositories r
        WHERE r.name = $1 AND m.repository_id = r.id AND m.digest = $2 RETURNING m.media_type, m.size`,
      [name, digest],
    );
    return rows[0] ? { mediaType: rows[0].media_type, size: rows[0].size } : undefined;
  }

  /**
   * Up to `limit` manifests of `name` whose subject is `digest`, optionally of one artifact type,
   * in digest order after `last` (exclusive), for a paginated referrers listing.
   */
  async listReferrers(name: string, digest: string, options: { artifactType?: string; limit: number; last?: string }): Promise<ReferrerRow[]> {
    const { rows } = await this.q.query<Omit<ReferrerRow, 'annotations'> & { id: number; payload: Uint8Array | null }>(
      `SELECT m.id, m.digest, m.media_type AS "mediaType", m.size, m.artifact_type AS "artifactType", ${smallPayloadSql('m')} AS payload
         FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE r.name = $1 AND m.subject_digest = $2
          AND ($3::text IS NULL OR m.artifact_type = $3::text)
          AND ($4::text IS NULL OR m.digest > $4::text COLLATE "C")
        ORDER BY m.digest COLLATE "C" LIMIT $5`,
      [name, digest, options.artifactType ?? null, options.last ?? null, options.limit],
    );
    // Annotations come from the payload (they are not stored apart); one large payload at a time.
    const referrers: ReferrerRow[] = [];
    for (const row of rows) {
      const payload = await loadPayload(this.q, row);
      if (!payload) continue; // deleted meanwhile
      const { id: _id, payload: _payload, ...rest } = row;
      referrers.push({ ...rest, annotations: storedManifestAnnotations(payload, row.mediaType) ?? null });
    }
    return referrers;
  }

  /** A row read with `smallPayloadSql`, with its payload loaded (in slices when large); undefined if gone meanwhile. */
  private async withPayload(row: PayloadRow | undefined): Promise<StoredManifest | undefined> {
    if (!row) return undefined;
    const payload = await loadPayload(this.q, row);
    return payload && { digest: row.digest, mediaType: row.mediaType, payload, size: row.size };
  }
}

/** {@link ManifestLookup}s of one kind as the arrays a statement unnests, with their positions. */
interface LookupColumns {
  i: number[];
  repository: string[];
  reference: string[];
}

/** A manifest row whose payload is inline when small and null when large (read in slices). */
type PayloadRow = Omit<StoredManifest, 'payload'> & { id: number; payload: Uint8Array | null };
