import type { Queryer } from '../queryer';

/**
 * One-time nonces of signed internal requests, shared by every replica of a service: a nonce is
 * claimed once, and claiming it again before it expires fails, whichever replica tries. Expiry is
 * judged by the database's clock alone.
 */
export class NonceStore {
  constructor(private readonly q: Queryer) {}

  /**
   * Claims `nonce` for `expiresInMs`: true the first time, false while an earlier claim of it has
   * not expired (a replay). An expired claim that was not pruned yet is taken over.
   */
  async claim(nonce: string, expiresInMs: number): Promise<boolean> {
    const { affected } = await this.q.query(
      `INSERT INTO request_nonces (nonce, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')
       ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE request_nonces.expires_at < now()`,
      [nonce, expiresInMs],
    );
    return affected === 1;
  }

  /** Deletes expired claims; returns how many. */
  async prune(): Promise<number> {
    const { affected } = await this.q.query('DELETE FROM request_nonces WHERE expires_at < now()');
    return affected;
  }
}
