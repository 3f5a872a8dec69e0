/** Sample statistics and the units the benchmark reports in (decimal MB, as the targets are stated). */

export const MB = 1_000_000;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Nearest-rank percentile (`p` in 0..100) of `samples`; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Throughput in MB/s (10^6 bytes per second). */
export function mbPerSecond(bytes: number, milliseconds: number): number {
  return bytes / MB / (milliseconds / 1000);
}

/** `bytes` as a human size in binary units (for sizes of workloads, which are powers of two). */
export function binarySize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}
