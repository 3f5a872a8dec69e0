import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { ManifestBlobUnknownError, type RequestContext } from '@lading/contracts';
import type { ParsedManifest } from '@lading/manifest';
import {
  appendOutboxEvent,
  ensureRepository,
  findRepositoryId,
  loadPayload,
  runSql,
  smallPayloadSql,
  storedManifestAnnotations,
} from '@lading/metadata-db';

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

/** What a manifest PUT writes. */
export interface ManifestWrite {
  name: string;
  digest: string;
  payload: Buffer;
  parsed: ParsedManifest;
  tag?: string;
  request: RequestContext;
  url: string;
}

/** The manifests, manifest_references and tags rows. */
@Injectable()
export class ManifestRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Stores a manifest, its references and its tag in one transaction, with the push event; the
   * manifest becomes visible only if every blob and child it references is in the repository
   * (else MANIFEST_BLOB_UNKNOWN and nothing changes).
   */
  async putManifest(w: ManifestWrite): Promise<void> {
    await this.ds.transaction(async (m) => {
      const repositoryId = await ensureRepository(m, w.name);
      const blobDigests = w.parsed.blobReferences.map((d) => d.digest);
      const childDigests = w.parsed.childReferences.map((d) => d.digest);
      await assertAllPresent(m, 'repository_blobs', repositoryId, blobDigests);
      await assertAllPresent(m, 'manifests', repositoryId, childDigests);
      const inserted = await runSql<{ id: number }>(
        m,
        // No annotations column: they stay in the payload (see storedManifestAnnotations).
        `INSERT INTO manifests (repository_id, digest, media_type, payload, size, config_digest, subject_digest, artifact_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
        [
          repositoryId,
          w.digest,
          w.parsed.mediaType,
          w.payload,
          w.payload.length,
          w.parsed.config?.digest ?? null,
          w.parsed.subject?.digest ?? null,
          w.parsed.referrerArtifactType ?? null,
        ],
      );
      let manifestId = inserted.rows[0]?.id;
      if (manifestId === undefined) {
        const { rows } = await runSql<{ id: number }>(m, 'SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2', [
          repositoryId,
          w.digest,
        ]);
        manifestId = rows[0].id;
      } else if (blobDigests.length + childDigests.length > 0) {
        await runSql(
          m,
          `INSERT INTO manifest_references (manifest_id, kind, digest)
           SELECT $1::bigint, 'blob', unnest($2::text[]) UNION SELECT $1::bigint, 'manifest', unnest($3::text[])
           ON CONFLICT DO NOTHING`,
          [manifestId, blobDigests, childDigests],
        );
      }
      if (w.tag !== undefined) {
        await runSql(
          m,
          `INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = EXCLUDED.manifest_id, updated_at = now()`,
          [repositoryId, w.tag, manifestId],
        );
      }
      await appendOutboxEvent(m, {
        action: 'push',
        repository: w.name,
        target: {
          mediaType: w.parsed.mediaType,
          digest: w.digest,
          size: w.payload.length,
          length: w.payload.length,
          url: w.url,
          ...(w.tag !== undefined ? { tag: w.tag } : {}),
        },
        request: w.request,
      });
    });
  }

  /** The manifest `reference` (a tag or a digest) of repository `name`, or undefined. */
  async findManifest(name: string, reference: { tag?: string; digest?: string }): Promise<StoredManifest | undefined> {
    // A large payload is read in slices (see loadPayload): in one piece it cost ~10x its size.
    type Row = Omit<StoredManifest, 'payload'> & { id: number; payload: Uint8Array | null };
    const { rows } = reference.digest
      ? await runSql<Row>(
          this.ds.manager,
          `SELECT m.id, m.digest, m.media_type AS "mediaType", ${smallPayloadSql('m')} AS payload, m.size FROM manifests m
             JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
          [name, reference.digest],
        )
      : await runSql<Row>(
          this.ds.manager,
          `SELECT m.id, m.digest, m.media_type AS "mediaType", ${smallPayloadSql('m')} AS payload, m.size FROM tags t
             JOIN repositories r ON r.id = t.repository_id JOIN manifests m ON m.id = t.manifest_id
            WHERE r.name = $1 AND t.name = $2`,
          [name, reference.tag],
        );
    const row = rows[0];
    if (!row) return undefined;
    const payload = await loadPayload(this.ds.manager, row);
    return payload && { digest: row.digest, mediaType: row.mediaType, payload, size: row.size };
  }

  /** Deletes a manifest by digest (its tags and references go with it); false when unknown. */
  async deleteManifest(name: string, digest: string, request: RequestContext, url: string): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const repositoryId = await findRepositoryId(m, name);
      if (repositoryId === undefined) return false;
      const { rows } = await runSql<{ media_type: string; size: number }>(
        m,
        'DELETE FROM manifests WHERE repository_id = $1 AND digest = $2 RETURNING media_type, size',
        [repositoryId, digest],
      );
      if (rows.length === 0) return false;
      await appendOutboxEvent(m, {
        action: 'delete',
        repository: name,
        target: { digest, mediaType: rows[0].media_type, size: rows[0].size, length: rows[0].size, url },
        request,
      });
      return true;
    });
  }

  /** Deletes one tag (the manifest stays); false when unknown. */
  async deleteTag(name: string, tag: string, request: RequestContext): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const repositoryId = await findRepositoryId(m, name);
      if (repositoryId === undefined) return false;
      const { rows } = await runSql<{ digest: string; media_type: string }>(
        m,
        `DELETE FROM tags t USING manifests m
          WHERE t.repository_id = $1 AND t.name = $2 AND m.id = t.manifest_id RETURNING m.digest, m.media_type`,
        [repositoryId, tag],
      );
      if (rows.length === 0) return false;
      await appendOutboxEvent(m, {
        action: 'delete',
        repository: name,
        target: { tag, digest: rows[0].digest, mediaType: rows[0].media_type },
        request,
      });
      return true;
    });
  }

  /** Manifests of `name` whose subject is `digest`, optionally of one artifact type. */
  async findReferrers(name: string, digest: string, artifactType?: string): Promise<ReferrerRow[]> {
    const params: unknown[] = [name, digest];
    let filter = '';
    if (artifactType !== undefined) {
      params.push(artifactType);
      filter = 'AND m.artifact_type = $3';
    }
    const { rows } = await runSql<Omit<ReferrerRow, 'annotations'> & { id: number; payload: Uint8Array | null }>(
      this.ds.manager,
      `SELECT m.id, m.digest, m.media_type AS "mediaType", m.size, m.artifact_type AS "artifactType", ${smallPayloadSql('m')} AS payload
         FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE r.name = $1 AND m.subject_digest = $2 ${filter}
        ORDER BY m.digest`,
      params,
    );
    // Annotations come from the payload (they are not stored apart); one large payload at a time.
    const referrers: ReferrerRow[] = [];
    for (const row of rows) {
      const payload = await loadPayload(this.ds.manager, row);
      if (!payload) continue; // deleted meanwhile
      referrers.push({
        digest: row.digest,
        mediaType: row.mediaType,
        size: row.size,
        artifactType: row.artifactType,
        annotations: storedManifestAnnotations(payload, row.mediaType) ?? null,
      });
    }
    return referrers;
  }
}

/** Throws MANIFEST_BLOB_UNKNOWN for the first of `digests` that `table` lacks in the repository. */
async function assertAllPresent(
  m: EntityManager,
  table: 'repository_blobs' | 'manifests',
  repositoryId: number,
  digests: string[],
): Promise<void> {
  if (digests.length === 0) return;
  const { rows } = await runSql<{ digest: string }>(
    m,
    `SELECT digest FROM ${table} WHERE repository_id = $1 AND digest = ANY($2::text[])`,
    [repositoryId, digests],
  );
  const have = new Set(rows.map((r) => r.digest));
  const missing = digests.find((d) => !have.has(d));
  if (missing) throw new ManifestBlobUnknownError(missing);
}
