import { CATALOG_PAGE_SQL, MetadataDb, openMetadataDb, TAG_PAGE_SQL } from '@lading/metadata-db';
import { byteOrder, expectKeysetPlan, insertRepositories, insertTags, listingTagName, vacuumListingTables } from './listing-fixtures';

// The listing queries on embedded PGlite, over 100,000 tags and 20,000 repositories: keyset scans
// of the index in byte order, whatever the page (test/integration/listings.int-spec.ts checks
// PostgreSQL and the HTTP side).
describe('listing query plans on PGlite', () => {
  let db: MetadataDb;
  beforeAll(async () => {
    db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
    await insertTags(db.dataSource, 'plans/tags', 100_000);
    await insertRepositories(db.dataSource, 'plan', 20_000);
    await vacuumListingTables(db.dataSource);
  }, 120_000);
  afterAll(async () => {
    await db?.close();
  });

  it.each([
    ['the first page', null],
    ['a page from the middle', listingTagName(50_000)],
  ])('reads %s of tags as an index-only scan of tags_pkey, no sort', async (_what, last) => {
    await expectKeysetPlan(db.dataSource, TAG_PAGE_SQL, ['plans/tags', last, 101], { index: 'tags_pkey', scan: 'Index Only Scan', rows: 101 });
  });

  it.each([
    ['the first page', null],
    ['a page from the middle', 'plan5'],
  ])('reads %s of the catalog as an index scan of repositories_name_key, no sort, no hashed probe', async (_what, last) => {
    await expectKeysetPlan(db.dataSource, CATALOG_PAGE_SQL, [last, 101], { index: 'repositories_name_key', scan: 'Index Scan', rows: 101 });
  });

  it('lists through the store in byte order, which no linguistic collation gives', async () => {
    const all = byteOrder(Array.from({ length: 100_000 }, (_, i) => listingTagName(i + 1)));
    expect(await db.read.tags.listTags('plans/tags', 1000)).toEqual(all.slice(0, 1000));
    expect(await db.read.tags.listTags('plans/tags', 1000, all[49_999])).toEqual(all.slice(50_000, 51_000));
    expect([...all].sort((a, b) => a.localeCompare(b, 'en'))).not.toEqual(all);
  });
});
