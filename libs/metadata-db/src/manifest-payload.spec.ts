import type { DataSource } from 'typeorm';
import { openMetadataDb } from './metadata-db';
import { poolQueryer, type Queryer } from './queryer';
import {
  PAYLOAD_SLICE_BYTES,
  loadPayload,
  readPayloadInSlices,
  smallPayloadSql,
  storedManifestAnnotations,
} from './manifest-payload';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('manifest payloads', () => {
  let ds: DataSource;
  let q: Queryer;
  let repositoryId: number;
  const runSql = <T>(_: unknown, text: string, params: unknown[] = []) => q.query<T>(text, params);
  beforeAll(async () => {
    ds = await openMetadataDb({ pgliteDir: 'memory://' });
    q = poolQueryer(ds);
    ({
      rows: [{ id: repositoryId }],
    } = await runSql<{ id: number }>(ds.manager, `INSERT INTO repositories (name) VALUES ('p') RETURNING id`));
  }, 30_000);
  afterAll(async () => {
    await ds.destroy();
  });

  const insert = async (digest: string, payload: Uint8Array): Promise<number> => {
    const { rows } = await runSql<{ id: number }>(
      ds.manager,
      `INSERT INTO manifests (repository_id, digest, media_type, payload, size) VALUES ($1, $2, 'x', $3, $4) RETURNING id`,
      [repositoryId, digest, payload, payload.byteLength],
    );
    return rows[0].id;
  };

  it('reads a large payload in slices, whatever its size against the slice', async () => {
    for (const size of [PAYLOAD_SLICE_BYTES + 1, 3 * PAYLOAD_SLICE_BYTES, 2 * PAYLOAD_SLICE_BYTES - 7]) {
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff;
      const id = await insert(`big-${size}`, bytes);
      expect((await readPayloadInSlices(q, id, size))!.equals(bytes)).toBe(true);
      const { rows } = await runSql<{ id: number; size: number; payload: Uint8Array | null }>(
        ds.manager,
        `SELECT m.id, m.size, ${smallPayloadSql('m')} AS payload FROM manifests m WHERE m.id = $1`,
        [id],
      );
      expect(rows[0].payload).toBeNull();
      expect((await loadPayload(q, rows[0]))!.equals(bytes)).toBe(true);
    }
  });

  it('reads a small payload with its row, and a vanished row as undefined', async () => {
    const id = await insert('small', Buffer.from('{}'));
    const { rows } = await runSql<{ id: number; size: number; payload: Uint8Array | null }>(
      ds.manager,
      `SELECT m.id, m.size, ${smallPayloadSql('m')} AS payload FROM manifests m WHERE m.id = $1`,
      [id],
    );
    expect((await loadPayload(q, rows[0]))!.toString()).toBe('{}');
    expect(await readPayloadInSlices(q, 987_654, 10)).toBeUndefined();
  });

  it('re-derives the annotations a PUT parsed (null values dropped)', () => {
    const manifest = (annotations?: object) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${'4'.repeat(64)}`, size: 2 },
          layers: [],
          ...(annotations ? { annotations } : {}),
        }),
      );
    expect(storedManifestAnnotations(manifest({ a: '1', gone: null }), OCI_MANIFEST)).toEqual({ a: '1' });
    expect(storedManifestAnnotations(manifest(), OCI_MANIFEST)).toBeUndefined();
    expect(storedManifestAnnotations(Buffer.from('not json'), OCI_MANIFEST)).toBeUndefined();
  });
});
