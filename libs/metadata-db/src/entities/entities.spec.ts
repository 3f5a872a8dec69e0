import type { DataSource } from 'typeorm';
import { openMetadataDb } from '../metadata-db';
import { poolQueryer } from '../queryer';

interface Column {
  table: string;
  column: string;
  type: string;
  nullable: boolean;
}

/** TypeORM's column types as information_schema spells them. */
const PG_TYPE: Record<string, string> = {
  bigint: 'bigint',
  integer: 'integer',
  int: 'integer',
  text: 'text',
  uuid: 'uuid',
  bytea: 'bytea',
  boolean: 'boolean',
  jsonb: 'jsonb',
  json: 'json',
  timestamptz: 'timestamp with time zone',
  interval: 'interval',
};

describe('the TypeORM entities', () => {
  let ds: DataSource;
  beforeAll(async () => {
    ds = await openMetadataDb({ pgliteDir: 'memory://' });
  }, 60_000);
  afterAll(async () => {
    await ds?.destroy();
  });

  it('describe exactly the tables and columns the migrations create', async () => {
    const { rows } = await poolQueryer(ds).query<Column>(
      `SELECT table_name AS "table", column_name AS "column", data_type AS type, is_nullable = 'YES' AS nullable
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
        ORDER BY 1, 2`,
    );
    const fromEntities: Column[] = ds.entityMetadatas
      .flatMap((e) =>
        e.columns.map((c) => ({
          table: e.tableName,
          column: c.databaseName,
          type: c.isArray ? 'ARRAY' : (PG_TYPE[String(c.type)] ?? `unmapped:${String(c.type)}`),
          nullable: c.isNullable,
        })),
      )
      .sort((a, b) => (a.table === b.table ? (a.column < b.column ? -1 : 1) : a.table < b.table ? -1 : 1));
    expect(fromEntities).toEqual(rows);
  });
});
