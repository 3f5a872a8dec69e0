/**
 * The wait before retry `attempt` (1 = the first retry): exponential from `baseMs`, doubling, at
 * most `maxMs`, with full jitter (a uniform draw below that bound), so endpoints that failed
 * together do not retry together. `random` is injectable for tests.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const bound = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * bound);
}
