import { randomBytes } from 'node:crypto';
import type { LadingConfig } from '@lading/nest-common';
import { HashStateCache } from './hash-state.cache';

const config = (hashcheckpoints: boolean) => ({ services: { blobupload: { hashcheckpoints } } }) as unknown as Pick<LadingConfig, 'services'>;

describe('HashStateCache', () => {
  let cache: HashStateCache;
  afterEach(async () => {
    await cache.onModuleDestroy();
  });

  it('shadows a fresh hash for checkpoints when other processes share the database, unless no checkpoint will be asked for', async () => {
    cache = new HashStateCache({ soleWriter: false }, config(true));
    const shadowed = cache.fresh();
    const plain = cache.fresh(false);
    const bytes = randomBytes(100_000);
    shadowed.update(bytes);
    plain.update(bytes);
    expect(await shadowed.checkpoint()).toMatchObject({ offset: bytes.length });
    // The closing PUT's hash: no copy of its bytes went to the hashing worker.
    expect(await plain.checkpoint()).toBeNull();
    expect(plain.digest()).toBe(shadowed.digest());
    shadowed.dispose();
  });

  it('shadows nothing for the sole writer (embedded) or with checkpoints off', async () => {
    for (const [soleWriter, on] of [[true, true], [false, false]] as const) {
      cache = new HashStateCache({ soleWriter }, config(on));
      expect(cache.checkpoints).toBe(false);
      expect(await cache.fresh().checkpoint()).toBeNull();
      await cache.onModuleDestroy();
    }
  });
});
