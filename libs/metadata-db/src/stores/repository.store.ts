import type { Queryer } from '../queryer';

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

  /** Up to `limit` repository names after `last` (exclusive, byte order) that hold a manifest or a blob. */
  async listRepositories(limit: number, last?: string): Promise<string[]> {
    const { rows } = await this.q.query<{ name: string }>(
      `SELECT r.name FROM repositories r
        WHERE ($1::text IS NULL OR r.name > $1::text COLLATE "C")
          AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
               OR EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repository_id = r.id))
        ORDER BY r.name COLLATE "C" LIMIT $2`,
      [last ?? null, limit],
    );
    return rows.map((r) => r.name);
  }
}
