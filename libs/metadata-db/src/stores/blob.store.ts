import type { Queryer } from '../queryer';
import type { GcStore } from './gc.store';
import type { RepositoryStore } from './repository.store';

/** A blob as a repository sees it. */
export interface LinkedBlob {
  digest: string;
  size: number;
}

/** The blobs rows and their links to repositories (what makes a blob visible in one). */
export class BlobStore {
  constructor(
    private readonly q: Queryer,
    private readonly repositories: RepositoryStore,
    private readonly gc: GcStore,
  ) {}

  /** The blob if it is linked to repository `name`; undefined otherwise (it may exist elsewhere). */
  async findLinked(name: string, digest: string): Promise<LinkedBlob | undefined> {
    const { rows } = await this.q.query<LinkedBlob>(
      `SELECT b.digest, b.size FROM repository_blobs rb
         JOIN repositories r ON r.id = rb.repository_id
         JOIN blobs b ON b.digest = rb.digest
        WHERE r.name = $1 AND rb.digest = $2`,
      [name, digest],
    );
    return rows[0];
  }

  /**
   * Records a stored blob and links it to `name` (creating the repository); idempotent. A link
   * that exists is pushed again: its review by GC starts over. Call inside a transaction (the
   * GC review rows of the link and the blob are locked first, when due soon).
   */
  async linkBlob(name: string, blob: LinkedBlob): Promise<void> {
    const repositoryId = await this.repositories.ensure(name);
    await this.gc.lockDueReviews(repositoryId, { blobDigests: [blob.digest] });
    await this.q.query('INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [blob.digest, blob.size]);
    await this.upsertLink(repositoryId, blob.digest);
  }

  /**
   * Links blob `digest` of repository `from` into `name` (a cross-repository mount), if `from`
   * has it: the source link is locked (`FOR KEY SHARE`) while the new one is written, so GC
   * cannot remove the blob in between. Call inside a transaction. The blob, or undefined when
   * `from` does not have it (nothing changed).
   */
  async mountBlob(from: string, name: string, digest: string): Promise<LinkedBlob | undefined> {
    const { rows } = await this.q.query<LinkedBlob>(
      `SELECT b.digest, b.size FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest
        WHERE r.name = $1 AND rb.digest = $2 FOR KEY SHARE OF rb`,
      [from, digest],
    );
    const blob = rows[0];
    if (!blob) return undefined;
    const repositoryId = await this.repositories.ensure(name);
    await this.gc.lockDueReviews(repositoryId, { blobDigests: [digest] });
    await this.upsertLink(repositoryId, digest);
    return { digest: blob.digest, size: Number(blob.size) };
  }

  private async upsertLink(repositoryId: number, digest: string): Promise<void> {
    await this.q.query(
      'INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2) ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = now()',
      [repositoryId, digest],
    );
  }

  /** Removes the link of `digest` from `name`; the blob's size, or undefined when there was none. The bytes stay for GC. */
  async unlinkBlob(name: string, digest: string): Promise<LinkedBlob | undefined> {
    const repositoryId = await this.repositories.findId(name);
    if (repositoryId === undefined) return undefined;
    // GC's review rows first, as every change takes them (see GcStore.lockDueReviews): the delete
    // below removes the link's review row too, and taking it only then, after the link, is the
    // opposite order of a manifest put's (review rows, then links): a deadlock between the two.
    await this.gc.lockDueReviews(repositoryId, { blobDigests: [digest] });
    const { rows } = await this.q.query<{ size: number }>(
      `DELETE FROM repository_blobs rb USING blobs b
        WHERE rb.repository_id = $1 AND rb.digest = $2 AND b.digest = rb.digest RETURNING b.size`,
      [repositoryId, digest],
    );
    return rows[0] ? { digest, size: rows[0].size } : undefined;
  }

  /**
   * Which of `digests` are linked to repository `repositoryId`, locking those links (`FOR KEY
   * SHARE`) until the transaction ends, so a concurrent unlink waits for it instead of leaving a
   * manifest whose blob is gone. Call inside a transaction.
   */
  async lockLinked(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const { rows } = await this.q.query<{ digest: string }>(
      'SELECT digest FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2::text[]) FOR KEY SHARE',
      [repositoryId, digests],
    );
    return new Set(rows.map((r) => r.digest));
  }
}
