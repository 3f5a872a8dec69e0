import type { Queryer } from '../queryer';
import type { ManifestsChanged } from './manifest.store';

/**
 * One page of a repository's tags: $1 repository, $2 last (exclusive; null from the start), $3 limit.
 * The repository's id comes from a sub-select (one value, known before the scan) rather than a
 * join: with the id fixed, the primary key yields names in order and the scan stops after $3 rows;
 * a join loses that order, and PostgreSQL read all 100,000 tags of a repository and sorted them
 * (50-60 ms a page). Tags are never empty, so `''` stands for "from the start" and the bound stays
 * an index condition (an `IS NULL OR` turned it into a filter over every earlier row). The bound
 * is a sub-select too, so that the planner does not see its value (see {@link CATALOG_PAGE_SQL}):
 * the plan is the same for every page.
 */
export const TAG_PAGE_SQL = `SELECT name FROM tags
  WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name > (SELECT COALESCE($2::text, ''))
  ORDER BY name LIMIT $3`;

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

  /**
   * Up to `limit` tag names of `name` after `last` (exclusive), in byte order: one keyset scan of
   * the primary key `(repository_id, name COLLATE "C")`, which is already in that order (see
   * {@link TAG_PAGE_SQL}).
   */
  async listTags(name: string, limit: number, last?: string): Promise<string[]> {
    const { rows } = await this.q.query<{ name: string }>(TAG_PAGE_SQL, [name, last ?? null, limit]);
    return rows.map((r) => r.name);
  }
}
