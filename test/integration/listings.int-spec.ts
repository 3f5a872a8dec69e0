import { request } from 'node:http';
import { Client } from 'pg';
import { CATALOG_PAGE_SQL, TAG_PAGE_SQL } from '@lading/metadata-db';
import {
  byteOrder,
  eventually,
  expectKeysetPlan,
  insertRepositories,
  insertTags,
  listingRepositoryName,
  listingTagName,
  vacuumListingTables,
} from '@lading/testing';
import { startSplit, type SplitStack } from '../support/registry-processes';

const TAGS = 100_000;
const REPOSITORIES = 20_000;
const BIG = 'listings/big';
/** Small, so that a connection kept by an aborted stream would starve the next requests. */
const POOL_SIZE = 2;

// Listings at scale (issue 11) through the split stack on PostgreSQL: a repository of 100,000
// tags and a catalog of 20,000 repositories, generated once with SQL into the real tables.
describe('listings at scale, split mode on PostgreSQL', () => {
  let stack: SplitStack;
  let pg: Client;
  const tags = byteOrder(Array.from({ length: TAGS }, (_, i) => listingTagName(i + 1)));

  beforeAll(async () => {
    stack = await startSplit({ withWorkers: false, env: { LADING_DATABASE_POOLSIZE: String(POOL_SIZE) } });
    pg = new Client({ connectionString: stack.databaseUrl });
    await pg.connect();
    await insertTags(pg, BIG, TAGS);
    await insertRepositories(pg, 'cat', REPOSITORIES);
    await vacuumListingTables(pg);
  });
  afterAll(async () => {
    await pg?.end();
    await stack?.stop();
  });

  const get = (path: string) => fetch(`${stack.url}${path}`);

  /** Follows the Link headers from `path`; every page's items, and the number of pages. */
  async function walk(path: string, key: 'tags' | 'repositories'): Promise<{ items: string[]; pages: number }> {
    const items: string[] = [];
    let pages = 0;
    for (let next: string | undefined = path; next; pages++) {
      const r = await get(next);
      expect(r.status).toBe(200);
      items.push(...((await r.json()) as Record<string, string[]>)[key]);
      next = /^<([^>]+)>; rel="next"$/.exec(r.headers.get('link') ?? '')?.[1];
    }
    return { items, pages };
  }

  it('plans a tag page from the start and from the middle as an index-only scan of tags_pkey, no sort', async () => {
    for (const last of [null, tags[TAGS / 2]]) {
      await expectKeysetPlan(pg, TAG_PAGE_SQL, [BIG, last, 101], { index: 'tags_pkey', scan: 'Index Only Scan', rows: 101 });
    }
  });

  it('plans a catalog page as a scan of repositories_name_key with per-row probes, no sort, no hashed probe', async () => {
    for (const last of [null, 'cat5']) {
      await expectKeysetPlan(pg, CATALOG_PAGE_SQL, [last, 101], { index: 'repositories_name_key', scan: 'Index Scan', rows: 101 });
    }
  });

  it('chains the Link headers through every page of 500 tags, each tag once, in byte order', async () => {
    const { items, pages } = await walk(`/v2/${BIG}/tags/list?n=500`, 'tags');
    expect(pages).toBe(TAGS / 500);
    expect(items.length).toBe(TAGS);
    expect(items).toEqual(tags);
  });

  it('starts a page after `last` from the middle', async () => {
    const r = await get(`/v2/${BIG}/tags/list?n=100&last=${encodeURIComponent(tags[49_999])}`);
    expect(((await r.json()) as { tags: string[] }).tags).toEqual(tags.slice(50_000, 50_100));
    expect(r.headers.get('link')).toBe(`</v2/${BIG}/tags/list?last=${encodeURIComponent(tags[50_099])}&n=100>; rel="next"`);
  });

  it('streams the whole list without n: chunked, valid JSON, every tag in order, no Link', async () => {
    const r = await get(`/v2/${BIG}/tags/list`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBeNull();
    expect(r.headers.get('transfer-encoding')).toBe('chunked');
    expect(r.headers.get('link')).toBeNull();
    expect(JSON.parse(await r.text())).toEqual({ name: BIG, tags });
  });

  it('streams the rest of the list after `last`, and an empty list past the end', async () => {
    const rest = await get(`/v2/${BIG}/tags/list?last=${encodeURIComponent(tags[TAGS - 1500])}`);
    expect(((await rest.json()) as { tags: string[] }).tags).toEqual(tags.slice(TAGS - 1499));
    const past = await get(`/v2/${BIG}/tags/list?last=~`);
    expect(await past.json()).toEqual({ name: BIG, tags: [] });
    expect((await get('/v2/listings/none/tags/list')).status).toBe(404);
  });

  it('chains the catalog through every page of 1000 repositories in byte order', async () => {
    const names = byteOrder([BIG, ...Array.from({ length: REPOSITORIES }, (_, i) => listingRepositoryName('cat', i + 1))]);
    const { items, pages } = await walk('/v2/_catalog?n=1000', 'repositories');
    expect(pages).toBe(Math.ceil(names.length / 1000));
    expect(items).toEqual(names);
  });

  it('releases its connection when the client goes away mid-stream, and keeps serving', async () => {
    const manifests = stack.apps['manifests'];
    // More aborted streams than the pool has connections: one kept by each would starve the pool.
    for (let i = 0; i < POOL_SIZE * 3; i++) await abortAfterHead(`${stack.url}/v2/${BIG}/tags/list`);
    await eventually(async () => (await busyConnections()).length === 0, 30_000, 'no busy connection');
    expect(manifests.proc.exitCode).toBeNull();
    const r = await get(`/v2/${BIG}/tags/list`);
    expect(((await r.json()) as { tags: string[] }).tags.length).toBe(TAGS);
  });

  /** Connections of the stack's database (other than the test's own) in a transaction or running a statement. */
  async function busyConnections(): Promise<string[]> {
    const { rows } = await pg.query<{ state: string }>(
      `SELECT state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
    );
    return rows.map((r) => r.state);
  }
});

/** GETs `url` and cuts the connection as soon as the response head arrives, its body unread. */
function abortAfterHead(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      expect(res.statusCode).toBe(200);
      req.destroy();
      resolve();
    });
    req.on('error', (e) => (req.destroyed ? resolve() : reject(e)));
    req.end();
  });
}
