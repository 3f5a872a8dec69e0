/* Large listings made with SQL (generate_series into the real tables, triggers and all), for the listing tests and bench/listings. */
import { createHash } from 'node:crypto';

/** What the fixtures run their statements through: a `pg` Client or Pool, or a TypeORM DataSource. */
export interface SqlRunner {
  query(text: string, params?: unknown[]): Promise<unknown>;
}

// Prefixes and separators whose byte order differs from every linguistic collation (case first,
// punctuation ignored): a listing sorted by anything but bytes comes out in another order.
const TAG_PREFIXES = ['v', 'V', '_', 'r-', 'r.', 'R_'];
const REPOSITORY_SEPARATORS = ['/', '-', '.', '_'];
const sqlArray = (items: string[]) => `ARRAY[${items.map((s) => `'${s}'`).join(',')}]`;
const md5Head = (i: number) => createHash('md5').update(String(i)).digest('hex').slice(0, 8);

/**
 * Valid tags whose byte order (the spec's lexical order: `-` < `.` < digits < upper case < `_` <
 * lower case) differs from every linguistic collation, which folds case and skips punctuation.
 */
export const ODD_TAG_NAMES: readonly string[] = [
  'a', 'A', 'b', 'B', 'z', 'Z', '0', '9', '_', '_a', '__', 'a-', 'a--b', 'a-b', 'a.', 'a..b', 'a.b', 'a0', 'aB', 'a_',
  'a_b', 'ab', 'Ab', 'v1.10', 'v1.2', 'v1.9', 'V1', 'v1', 'v1-rc', 'v1_rc', `a${'z'.repeat(127)}`,
];

/** The name of generated tag `i` (1-based), as {@link insertTags} writes it. */
export function listingTagName(i: number): string {
  return `${TAG_PREFIXES[i % TAG_PREFIXES.length]}${md5Head(i)}${i}`;
}

/** The name of generated repository `i` (1-based) under `prefix`, as {@link insertRepositories} writes it. */
export function listingRepositoryName(prefix: string, i: number): string {
  return `${prefix}${i % 1000}${REPOSITORY_SEPARATORS[i % REPOSITORY_SEPARATORS.length]}${md5Head(i)}${i}`;
}

/**
 * Creates repository `repository` (one manifest pushed to it) with tags 1..`tags` of
 * {@link listingTagName} or, given names, those tags; all point at that manifest. One statement.
 */
export async function insertTags(db: SqlRunner, repository: string, tags: number | readonly string[]): Promise<void> {
  const [name, source] =
    typeof tags === 'number'
      ? [`(${sqlArray(TAG_PREFIXES)})[1 + i % ${TAG_PREFIXES.length}] || substr(md5(i::text), 1, 8) || i`, 'generate_series(1, $2::int) i']
      : ['t.name', 'unnest($2::text[]) t(name)'];
  await db.query(
    `WITH r AS (INSERT INTO repositories (name, manifest_pushed) VALUES ($1, true) RETURNING id),
          m AS (INSERT INTO manifests (repository_id, digest, media_type, payload, size)
                SELECT id, 'sha256:' || encode(sha256('{}'::bytea), 'hex'), 'application/vnd.oci.image.manifest.v1+json', '{}'::bytea, 2
                  FROM r RETURNING id, repository_id)
     INSERT INTO tags (repository_id, name, manifest_id) SELECT m.repository_id, ${name}, m.id FROM m, ${source}`,
    [repository, tags],
  );
}

/**
 * Creates repositories 1..`count` of {@link listingRepositoryName} under `prefix`, each holding one
 * blob (the empty blob, linked as a push links it), so that the catalog lists them; in statements of
 * `batch` repositories, calling `progress` after each.
 */
export async function insertRepositories(
  db: SqlRunner,
  prefix: string,
  count: number,
  { batch = 100_000, progress }: { batch?: number; progress?: (done: number) => void } = {},
): Promise<void> {
  const empty = `sha256:${createHash('sha256').digest('hex')}`;
  await db.query('INSERT INTO blobs (digest, size) VALUES ($1, 0) ON CONFLICT DO NOTHING', [empty]);
  for (let from = 1; from <= count; from += batch) {
    const to = Math.min(count, from + batch - 1);
    await db.query(
      `WITH r AS (INSERT INTO repositories (name)
                  SELECT $1::text || (i % 1000) || (${sqlArray(REPOSITORY_SEPARATORS)})[1 + i % ${REPOSITORY_SEPARATORS.length}]
                         || substr(md5(i::text), 1, 8) || i
                    FROM generate_series($2::int, $3::int) i RETURNING id)
       INSERT INTO repository_blobs (repository_id, digest) SELECT id, $4 FROM r`,
      [prefix, from, to, empty],
    );
    progress?.(to);
  }
}

/**
 * VACUUM ANALYZE of the listing tables, as autovacuum would do after a bulk load: statistics for
 * the planner, and the visibility map that lets an index-only scan skip the heap.
 */
export async function vacuumListingTables(db: SqlRunner): Promise<void> {
  for (const table of ['repositories', 'tags', 'manifests', 'repository_blobs']) await db.query(`VACUUM ANALYZE ${table}`);
}

/** `names` in byte order (what the spec's "lexical" means, and the reference registry's order). */
export function byteOrder(names: readonly string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** One node of a PostgreSQL plan (`EXPLAIN (FORMAT JSON)`), with the fields the checks read. */
interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  'Actual Rows'?: number;
  Plans?: PlanNode[];
}

/** The rows of a result, whether `pg` (`{ rows }`) or TypeORM (the rows) answered. */
function rowsOf(result: unknown): Record<string, unknown>[] {
  return (Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows) as Record<string, unknown>[];
}

/** The plan of `sql` with `params` as PostgreSQL prints it, under `EXPLAIN (<options>)`. */
export async function explainPlan(db: SqlRunner, sql: string, params: unknown[], options = 'ANALYZE, BUFFERS'): Promise<string> {
  return rowsOf(await db.query(`EXPLAIN (${options}) ${sql}`, params))
    .map((r) => r['QUERY PLAN'])
    .join('\n');
}

/**
 * Runs `sql` with `params` under EXPLAIN ANALYZE and checks that it is a keyset scan: no Sort
 * anywhere, no hashed sub-plan (a whole-table scan per page), and a scan of `index` of kind `scan`
 * with the bound as an index condition that stopped after `rows` rows. Returns the plan as text.
 * @throws Error (a Jest expectation, the plan in its message) when the plan is not that.
 */
export async function expectKeysetPlan(
  db: SqlRunner,
  sql: string,
  params: unknown[],
  expected: { index: string; scan: 'Index Only Scan' | 'Index Scan'; rows: number },
): Promise<string> {
  const plan = await explainPlan(db, sql, params, 'ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF');
  const cell = rowsOf(await db.query(`EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF) ${sql}`, params))[0]['QUERY PLAN'];
  const nodes: PlanNode[] = [];
  const walk = (n: PlanNode) => {
    nodes.push(n);
    n.Plans?.forEach(walk);
  };
  walk((typeof cell === 'string' ? JSON.parse(cell) : cell)[0].Plan);
  const scan = nodes.find((n) => n['Index Name'] === expected.index);
  expect({
    sorts: nodes.filter((n) => n['Node Type'].includes('Sort')).length,
    hashed: nodes.some((n) => n.Filter?.includes('hashed')),
    scan: scan?.['Node Type'],
    bounded: Boolean(scan?.['Index Cond']?.includes('>')),
    rows: scan?.['Actual Rows'],
    plan,
  }).toEqual({ sorts: 0, hashed: false, scan: expected.scan, bounded: true, rows: expected.rows, plan });
  return plan;
}
