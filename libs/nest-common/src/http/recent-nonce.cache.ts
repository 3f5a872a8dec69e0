/**
 * The nonces of signed reads (GET, HEAD) this process accepted, each kept until its signature
 * can no longer be fresh, at most `capacity` of them (the oldest go first).
 *
 * Per process on purpose: a replayed read lands on any replica and changes nothing, and it
 * yields nothing the captured request's own answer did not already show, so reads get this
 * cheap check instead of a database write on the pull path. Mutating requests claim their
 * nonce in the database, which every replica shares.
 */
export class RecentNonceCache {
  /** nonce → until when (ms, this process's clock) a replay of it would still be fresh. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity = 100_000) {}

  /** True the first time `nonce` comes (or after it expired); false for a replay. */
  claim(nonce: string, freshUntil: number, now = Date.now()): boolean {
    const prior = this.seen.get(nonce);
    if (prior !== undefined && prior >= now) return false;
    this.seen.delete(nonce);
    this.seen.set(nonce, freshUntil);
    // Insertion order is close to expiry order: drop expired entries from the front, and the
    // oldest ones beyond the capacity.
    for (const [n, until] of this.seen) {
      if (until >= now && this.seen.size <= this.capacity) break;
      this.seen.delete(n);
    }
    return true;
  }

  /** How many nonces are kept. */
  get size(): number {
    return this.seen.size;
  }
}
