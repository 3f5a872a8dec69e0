import type { Queryer } from '../queryer';

/**
 * One page of the catalog: $1 last (exclusive; null from the start), $2 limit. A keyset scan of
 * `repositories_name_key` (names are `COLLATE "C"`: byte order) that probes each name for content
 * and stops after $2 rows. The probe is one EXISTS over a UNION ALL so that the planner cannot turn
 * it into a hashed sub-plan: with `EXISTS (manifests) OR EXISTS (links)` it hashed every row of
 * `manifests` on each page (145 ms with 200,000 manifests), however small the page. Links come
 * first: a repository with content almost always has one, so the manifests probe rarely runs.
 * The bound is a sub-select (an InitPlan) so that the planner does not see its value: near the end
 * of the catalog it estimated a handful of rows after `last` and chose a bitmap scan of the whole
 * rest plus a sort (PGlite did, at 20,000 repositories), which reads every row after `last`
 * whenever the statistics lag behind (names added since the last ANALYZE). Unseen, the bound gets
 * the default selectivity and every page is the same ordered scan that stops at the limit.
 */
export const CATALOG_PAGE_SQL = `SELECT r.name FROM repositories r
  WHERE r.name > (SELECT COALESCE($1::text, ''))
    AND EXISTS (SELECT FROM repository_blobs b WHERE b.repository_id = r.id
                UNION ALL SELECT FROM manifests m WHERE m.repository_id = r.id)
  ORDER BY r.name LIMIT $2`;

/** The repositories rows: found or created by the writers, listed by the catalog. */
export class RepositoryStore {
  constructor(private readonly q: Queryer) {}

  /** The id of repository `name`, or undefined when it does not exist. */
  async findId(name: string): Promise<number | undefined> {
    const { rows } = await this.q.query<{ id: number }>('SELECT id FROM repositories WHERE name = $1', [name]);
    return rows[0]?.id;
  }

  /** The id of repository `name`, created when missing (safe under concurrent creators). */
  async ensure(name: string): Promise<number> {
    const existing = await this.findId(name);
    if (existing !== undefined) return existing;
    const { rows } = await this.q.query<{ id: number }>(
      'INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id',
      [name],
    );
    return rows[0]?.id ?? (await this.findId(name))!;
  }

  /**
   * The id of repository `name` for a manifest write: created when missing and marked as one that
   * a manifest was pushed to (see {@link hasTagListing}).
   */
  async ensureForManifest(name: string): Promise<number> {
    const { rows } = await this.q.query<{ id: number }>(
      `INSERT INTO repositories (name, manifest_pushed) VALUES ($1, true)
       ON CONFLICT (name) DO UPDATE SET manifest_pushed = true WHERE NOT repositories.manifest_pushed RETURNING id`,
      [name],
    );
    return rows[0]?.id ?? (await this.findId(name))!;
  }

  /**
   * Whether repository `name` has a tag listing: a manifest was pushed to it once (its listing
   * stays, empty, after every manifest is deleted, as in the reference registry); a repository
   * that only holds blobs, or that only an upload was opened in, has none.
   */
  async hasTagListing(name: string): Promise<boolean> {
    const { rows } = await this.q.query('SELECT 1 FROM repositories WHERE name = $1 AND manifest_pushed', [name]);
    return rows.length > 0;
  }

  /** Up to `limit` repository names after `last` (exclusive, byte order) that hold a manifest or a blob (see {@link CATALOG_PAGE_SQL}). */
  async listRepositories(limit: number, last?: string): Promise<string[]> {
    const { rows } = await this.q.query<{ name: string }>(CATALOG_PAGE_SQL, [last ?? null, limit]);
    return rows.map((r) => r.name);
  }
}
