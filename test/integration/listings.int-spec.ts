import { request, type IncomingMessage } from 'node:http';
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
  ODD_TAG_NAMES,
  vacuumListingTables,
} from '@lading/testing';
import { startSplit, type SplitStack } from '../support/registry-processes';

const TAGS = 100_000;
const REPOSITORIES = 20_000;
const BIG = 'listings/big';
const ODD = 'listings/odd';
/** A list far larger than every buffer between the manifests service and a client that stopped reading (see the test). */
const LONG = 'listings/long';
const LONG_TAGS = 100_000;
const longTagName = (i: number) => `${listingTagName(i)}-${'x'.repeat(100)}`;
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
    await insertTags(pg, ODD, ODD_TAG_NAMES);
    await insertTags(pg, LONG, Array.from({ length: LONG_TAGS }, (_, i) => longTagName(i + 1)));
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

  /** Every repository of the catalog, in byte order. */
  const catalog = () => byteOrder([BIG, ODD, LONG, ...Array.from({ length: REPOSITORIES }, (_, i) => listingRepositoryName('cat', i + 1))]);

  it('plans a tag page from the start, the middle and the end as an index-only scan of tags_pkey, no sort', async () => {
    for (const [last, rows] of [[null, 101], [tags[TAGS / 2], 101], [tags[TAGS - 51], 50]] as const) {
      await expectKeysetPlan(pg, TAG_PAGE_SQL, [BIG, last, 101], { index: 'tags_pkey', scan: 'Index Only Scan', rows });
    }
  });

  it('plans a catalog page from the start, the middle and the end as a scan of repositories_name_key with per-row probes, no sort, no hashed probe', async () => {
    const names = catalog();
    for (const [last, rows] of [[null, 101], ['cat5', 101], [names[names.length - 51], 50]] as const) {
      await expectKeysetPlan(pg, CATALOG_PAGE_SQL, [last, 101], { index: 'repositories_name_key', scan: 'Index Scan', rows });
    }
  });

  it('answers n=0 with an empty list and no Link (the spec), for tags and the catalog', async () => {
    const t = await get(`/v2/${BIG}/tags/list?n=0`);
    expect(await t.json()).toEqual({ name: BIG, tags: [] });
    expect(t.headers.get('link')).toBeNull();
    const c = await get('/v2/_catalog?n=0&last=cat5');
    expect(await c.json()).toEqual({ repositories: [] });
    expect(c.headers.get('link')).toBeNull();
  });

  it('gives a Link only while names remain: none for a page that takes exactly the rest', async () => {
    const last = tags[TAGS - 101];
    const exact = await get(`/v2/${BIG}/tags/list?n=100&last=${encodeURIComponent(last)}`);
    expect(((await exact.json()) as { tags: string[] }).tags).toEqual(tags.slice(TAGS - 100));
    expect(exact.headers.get('link')).toBeNull();
    const more = await get(`/v2/${BIG}/tags/list?n=101&last=${encodeURIComponent(last)}`);
    expect(((await more.json()) as { tags: string[] }).tags).toEqual(tags.slice(TAGS - 100));
    expect(more.headers.get('link')).toBeNull();
    const short = await get(`/v2/${BIG}/tags/list?n=99&last=${encodeURIComponent(last)}`);
    expect(((await short.json()) as { tags: string[] }).tags).toEqual(tags.slice(TAGS - 100, TAGS - 1));
    expect(short.headers.get('link')).toBe(`</v2/${BIG}/tags/list?last=${encodeURIComponent(tags[TAGS - 2])}&n=99>; rel="next"`);
  });

  it('starts after a `last` that is no name where it would sort, and answers an empty page past the end', async () => {
    // `-` sorts before every digit and letter: right after tags[500], before tags[501].
    const between = await get(`/v2/${BIG}/tags/list?n=100&last=${encodeURIComponent(`${tags[500]}-`)}`);
    expect(((await between.json()) as { tags: string[] }).tags).toEqual(tags.slice(501, 601));
    for (const last of ['zzz', '~', 'é']) {
      const past = await get(`/v2/${BIG}/tags/list?n=100&last=${encodeURIComponent(last)}`);
      expect(await past.json()).toEqual({ name: BIG, tags: [] });
      expect(past.headers.get('link')).toBeNull();
    }
    const names = catalog();
    const from = names.findIndex((n) => n > 'cat5');
    const c = await get('/v2/_catalog?n=100&last=cat5');
    expect(((await c.json()) as { repositories: string[] }).repositories).toEqual(names.slice(from, from + 100));
    const end = await get(`/v2/_catalog?n=100&last=${encodeURIComponent(names[names.length - 1])}`);
    expect(await end.json()).toEqual({ repositories: [] });
    expect(end.headers.get('link')).toBeNull();
  });

  it('caps n at 10,000 with a Link to the rest', async () => {
    const r = await get(`/v2/${BIG}/tags/list?n=20000`);
    expect(((await r.json()) as { tags: string[] }).tags).toEqual(tags.slice(0, 10_000));
    expect(r.headers.get('link')).toBe(`</v2/${BIG}/tags/list?last=${encodeURIComponent(tags[9_999])}&n=10000>; rel="next"`);
  });

  // libs/testing/src/listing-plans.spec.ts checks the same names and pages on embedded PGlite.
  it('lists tags of every odd character in byte order, paged and whole, as PGlite does', async () => {
    const odd = byteOrder(ODD_TAG_NAMES);
    expect((await walk(`/v2/${ODD}/tags/list?n=3`, 'tags')).items).toEqual(odd);
    expect(((await (await get(`/v2/${ODD}/tags/list`)).json()) as { tags: string[] }).tags).toEqual(odd);
    const page = async (last: string) => ((await (await get(`/v2/${ODD}/tags/list?n=3&last=${encodeURIComponent(last)}`)).json()) as { tags: string[] }).tags;
    expect(await page('a-')).toEqual(odd.slice(odd.indexOf('a-') + 1, odd.indexOf('a-') + 4));
    expect(await page('a-c')).toEqual(['a.', 'a..b', 'a.b']);
    expect(await page(odd[odd.length - 1])).toEqual([]);
    expect(await page('é')).toEqual([]);
  });

  it('keeps tag and repository names in the "C" collation (byte order), whatever the database default', async () => {
    const { rows } = await pg.query(
      `SELECT table_name, collation_name FROM information_schema.columns WHERE column_name = 'name' AND table_name IN ('tags', 'repositories') ORDER BY table_name`,
    );
    expect(rows).toEqual([
      { table_name: 'repositories', collation_name: 'C' },
      { table_name: 'tags', collation_name: 'C' },
    ]);
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
    const names = catalog();
    const { items, pages } = await walk('/v2/_catalog?n=1000', 'repositories');
    expect(pages).toBe(Math.ceil(names.length / 1000));
    expect(items).toEqual(names);
  });

  it('relays the list through the gateway as the service fetches it: batches are still to come after the first bytes reached the client', async () => {
    const expected = byteOrder(Array.from({ length: LONG_TAGS }, (_, i) => longTagName(i + 1)));
    // The client takes the first chunk and stops reading. The list (about 12 MB) is far more
    // than the socket buffers, the gateway's relay buffer and the service's write buffer hold
    // between them, so the service is left with batches it has not fetched yet.
    const { res, first } = await firstChunk(`${stack.url}/v2/${LONG}/tags/list`);
    const lock = new Client({ connectionString: stack.databaseUrl });
    await lock.connect();
    try {
      // From here on no batch can be read (the lock waits for one that is running).
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE tags IN ACCESS EXCLUSIVE MODE');
      const rest = readAll(res);
      // The client drains what the buffers held; the service then asks for its next batch, which
      // waits for the lock. A list built whole before its first byte asks for nothing more.
      await eventually(async () => (await waitingForTags()) > 0, 60_000, 'a batch query waiting for the lock on tags');
      await lock.query('COMMIT');
      expect(JSON.parse(Buffer.concat([first, await rest]).toString())).toEqual({ name: LONG, tags: expected });
    } finally {
      await lock.end();
    }
  });

  /** Statements of the stack (not the test's own) waiting for a lock on `tags`. */
  async function waitingForTags(): Promise<number> {
    const { rows } = await pg.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND wait_event_type = 'Lock' AND query LIKE '%FROM tags%'`,
    );
    return rows.length;
  }

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

/** GETs `url` (a 200) and stops reading its body after the first chunk: the response, paused, and that chunk. */
function firstChunk(url: string): Promise<{ res: IncomingMessage; first: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      expect(res.statusCode).toBe(200);
      res.once('data', (first: Buffer) => {
        res.pause();
        resolve({ res, first });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The rest of a paused response's body, read from now on. */
function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.resume();
  });
}

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
