import { MetadataDb, openMetadataDb } from '@lading/metadata-db';

/**
 * A throwaway metadata database (PGlite in memory, schema migrated) for the tests of one
 * `describe` block: opened before all of them, closed after all. Call it inside the `describe`;
 * read `.db` in hooks and tests.
 */
export function useMemoryMetadataDb(): { readonly db: MetadataDb } {
  const holder: { db?: MetadataDb } = {};
  beforeAll(async () => {
    holder.db = new MetadataDb(await openMetadataDb({ pgliteDir: 'memory://' }));
  }, 60_000);
  afterAll(async () => {
    await holder.db?.close();
  });
  return {
    get db(): MetadataDb {
      if (!holder.db) throw new Error('the metadata database is open only in hooks and tests');
      return holder.db;
    },
  };
}
