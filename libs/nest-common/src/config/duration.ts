/** Parses a Go-style duration (`90s`, `10m`, `168h`, `1h30m`, `500ms`) into milliseconds; NaN when malformed. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    if (m.index !== consumed) return NaN;
    total += Number(m[1]) * units[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === value.length && consumed > 0 ? total : NaN;
}
