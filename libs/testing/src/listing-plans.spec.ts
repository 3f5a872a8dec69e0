import { CATALOG_PAGE_SQL, MetadataDb, openMetadataDb, TAG_PAGE_SQL } from '@lading/metadata-db';
import { byteOrder, expectKeysetPlan, insertRepositories, insertTags, listingRepositoryName, listingTagName, ODD_TAG_NAMES, vacuumListingTables } from './listing-fixtures';

// The listing queries on embedded PGlite, over 100,000 tags and 20,000 repositories: keyset scans
// of the index in byte order, whatever the page (test/integration/listings.int-spec.ts checks
// PostgreSQL and the HTTP side).
describe('listing query plans on PGlite', () => {
  let db: MetadataDb;
  const all = byteOrder(Array.from({ length: 100_000 }, (_, i) => listingTagName(i + 1)));
  const catalog = byteOrder(['plans/odd', 'plans/tags', ...Array.from({ length: 20_000 }, (_, i) => listingRepositoryName('plan', i + 1))]);
  beforeAll(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    await insertTags(db.dataSource, 'plans/tags', 100_000);
    await insertRepositories(db.dataSource, 'plan', 20_000);
    await insertTags(db.dataSource, 'plans/odd', ODD_TAG_NAMES);
    await vacuumListingTables(db.dataSource);
  }, 120_000);
  afterAll(async () => {
    await db?.close();
  });

  it.each([
    ['the first page', () => null, 101],
    ['a page from the middle', () => listingTagName(50_000), 101],
    ['the end page', () => all[all.length - 51], 50],
  ])('reads %s of tags as an index-only scan of tags_pkey, no sort', async (_what, last, rows) => {
    await expectKeysetPlan(db.dataSource, TAG_PAGE_SQL, ['plans/tags', last(), 101], { index: 'tags_pkey', scan: 'Index Only Scan', rows });
  });

  it.each([
    ['the first page', () => null, 101],
    ['a page from the middle', () => 'plan5', 101],
    ['the end page', () => catalog[catalog.length - 51], 50],
  ])('reads %s of the catalog as an index scan of repositories_name_key, no sort, no hashed probe', async (_what, last, rows) => {
    await expectKeysetPlan(db.dataSource, CATALOG_PAGE_SQL, [last(), 101], { index: 'repositories_name_key', scan: 'Index Scan', rows });
  });

  it('lists through the store in byte order, which no linguistic collation gives', async () => {
    expect(await db.read.tags.listTags('plans/tags', 1000)).toEqual(all.slice(0, 1000));
    expect(await db.read.tags.listTags('plans/tags', 1000, all[49_999])).toEqual(all.slice(50_000, 51_000));
    expect([...all].sort((a, b) => a.localeCompare(b, 'en'))).not.toEqual(all);
  });

  // test/integration/listings.int-spec.ts checks the same names and pages on PostgreSQL.
  it('lists tags of every odd character in byte order, a page after `last` and past the end alike', async () => {
    const odd = byteOrder(ODD_TAG_NAMES);
    expect(await db.read.tags.listTags('plans/odd', 1000)).toEqual(odd);
    expect(await db.read.tags.listTags('plans/odd', 3, 'a-')).toEqual(odd.slice(odd.indexOf('a-') + 1, odd.indexOf('a-') + 4));
    expect(await db.read.tags.listTags('plans/odd', 3, 'a-c')).toEqual(['a.', 'a..b', 'a.b']);
    expect(await db.read.tags.listTags('plans/odd', 3, odd[odd.length - 1])).toEqual([]);
    expect(await db.read.tags.listTags('plans/odd', 3, 'é')).toEqual([]);
  });

  it('lists the catalog in byte order, from a `last` that is no repository too', async () => {
    expect(await db.read.repositories.listRepositories(catalog.length)).toEqual(catalog);
    const after = catalog.findIndex((n) => n > 'plan5');
    expect(await db.read.repositories.listRepositories(100, 'plan5')).toEqual(catalog.slice(after, after + 100));
  });

  it('keeps tag and repository names in the "C" collation (byte order), whatever the database default', async () => {
    const rows = await db.dataSource.query(
      `SELECT table_name, collation_name FROM information_schema.columns WHERE column_name = 'name' AND table_name IN ('tags', 'repositories') ORDER BY table_name`,
    );
    expect(rows).toEqual([
      { table_name: 'repositories', collation_name: 'C' },
      { table_name: 'tags', collation_name: 'C' },
    ]);
  });
});
