import type { DataSource } from 'typeorm';
import { openMetadataDb } from '../metadata-db';
import { poolQueryer } from '../queryer';
import { NonceStore } from './nonce.store';

describe('NonceStore', () => {
  let ds: DataSource;
  let nonces: NonceStore;
  beforeAll(async () => {
    ds = await openMetadataDb({ pgliteDir: 'memory://' });
    nonces = new NonceStore(poolQueryer(ds));
  }, 60_000);
  afterAll(async () => {
    await ds?.destroy();
  });

  it('claims a nonce once and refuses it again before it expires', async () => {
    expect(await nonces.claim('n-1', 60_000)).toBe(true);
    expect(await nonces.claim('n-1', 60_000)).toBe(false);
    expect(await nonces.claim('n-2', 60_000)).toBe(true);
  });

  it('takes over an expired claim, and prune removes expired ones only', async () => {
    expect(await nonces.claim('old', -1_000)).toBe(true);
    expect(await nonces.claim('old', -1_000)).toBe(true);
    expect(await nonces.claim('fresh', 60_000)).toBe(true);
    expect(await nonces.prune()).toBe(1);
    expect(await nonces.claim('fresh', 60_000)).toBe(false);
  });
});
