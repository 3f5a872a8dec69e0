import type { Queryer } from '../queryer';
import type { ManifestsChanged } from './manifest.store';

/** The tags rows: deletes and keyset-paginated listings (byte order, like the reference registry). */
export class TagStore {
  constructor(
    private readonly q: Queryer,
    private readonly changed: ManifestsChanged,
  ) {}

  /** Deletes one tag (the manifest stays); the manifest it pointed at, or undefined when unknown. */
  async deleteTag(name: string, tag: string): Promise<{ digest: string; mediaType: string } | undefined> {
    this.changed(name);
    const { rows } = await this.q.query<{ digest: string; media_type: string }>(
      `DELETE FROM tags t USING repositories r, manifests m
        WHERE r.name = $1 AND t.repository_id = r.id AND t.name = $2 AND m.id = t.manifest_id
        RETURNING m.digest, m.media_type`,
      [name, tag],
    );
    return rows[0] ? { digest: rows[0].digest, mediaType: rows[0].media_type } : undefined;
  }

  /** Up to `limit` tag names of `name` after `last` (exclusive), in byte order. */
  async listTags(name: string, limit: number, last?: string): Promise<string[]> {
    const { rows } = await this.q.query<{ name: string }>(
      `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
        WHERE r.name = $1 AND ($2::text IS NULL OR t.name > $2::text COLLATE "C")
        ORDER BY t.name COLLATE "C" LIMIT $3`,
      [name, last ?? null, limit],
    );
    return rows.map((r) => r.name);
  }
}
