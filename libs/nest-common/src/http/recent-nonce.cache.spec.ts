import { RecentNonceCache } from './recent-nonce.cache';

describe('RecentNonceCache', () => {
  it('accepts a nonce once and refuses it again while it is fresh', () => {
    const cache = new RecentNonceCache();
    expect(cache.claim('a', 1_000, 0)).toBe(true);
    expect(cache.claim('a', 1_000, 500)).toBe(false);
    expect(cache.claim('b', 1_000, 500)).toBe(true);
  });

  it('forgets a nonce once it expired', () => {
    const cache = new RecentNonceCache();
    cache.claim('a', 1_000, 0);
    expect(cache.claim('b', 3_000, 2_000)).toBe(true);
    expect(cache.size).toBe(1);
    expect(cache.claim('a', 3_000, 2_000)).toBe(true);
  });

  it('keeps at most its capacity, dropping the oldest', () => {
    const cache = new RecentNonceCache(2);
    for (const n of ['a', 'b', 'c']) cache.claim(n, 10_000, 0);
    expect(cache.size).toBe(2);
    expect(cache.claim('c', 10_000, 1)).toBe(false);
    expect(cache.claim('a', 10_000, 1)).toBe(true);
  });
});
