import { formatBytes, formatDuration, ProgressReporter } from './progress';

/** A stream that records what was written, and a clock the test moves. */
function fixture(tty: boolean, columns = 200) {
  const writes: string[] = [];
  let now = 1_000_000;
  const reporter = new ProgressReporter({
    label: 'reconcile',
    stream: { write: (t: string) => writes.push(t), isTTY: tty, columns },
    lineInterval: 10_000,
    redrawInterval: 100,
    now: () => now,
  });
  return { writes, reporter, tick: (ms: number) => (now += ms) };
}

describe('ProgressReporter', () => {
  it('on a terminal redraws one line in place, at most once per redraw interval, with a bar when totals are known', () => {
    const { writes, reporter, tick } = fixture(true);
    reporter.phase('comparing', { items: 4, bytes: 4096 });
    reporter.advance(1, 1024);
    tick(100);
    reporter.advance(1, 1024);
    tick(50);
    reporter.advance(1, 1024); // within the interval: not drawn
    expect(writes).toEqual([
      'reconcile: comparing [------------------------] 0% 0/4 items, 0 B/4.0 KiB 0ms',
      '\r\x1b[2Kreconcile: comparing [############------------] 50% 2/4 items, 2.0 KiB/4.0 KiB 100ms',
    ]);
  });

  it('on a terminal replaces the bar with each phase’s closing line, and ends with the summary', () => {
    const { writes, reporter, tick } = fixture(true);
    reporter.phase('comparing');
    tick(1500);
    reporter.advance(3);
    reporter.phase('deleting', { items: 1 });
    reporter.advance(1, 10);
    reporter.done('reconcile: 3 blobs');
    expect(writes.slice(-4)).toEqual([
      '\r\x1b[2Kreconcile: comparing: 3 items, done in 1.5s\n',
      'reconcile: deleting [------------------------] 0% 0/1 items 0ms',
      '\r\x1b[2Kreconcile: deleting: 1/1 items, 10 B, done in 0ms\n',
      'reconcile: 3 blobs\n',
    ]);
  });

  it('cuts the line to the terminal’s width, 80 when the terminal reports none', () => {
    const narrow = fixture(true, 30);
    narrow.reporter.phase('comparing storage with the database', { items: 10 });
    expect(narrow.writes[0]).toHaveLength(29);
    const unsized = fixture(true, 0);
    unsized.reporter.phase('comparing storage with the database, a phase with a long name', { items: 10 });
    expect(unsized.writes[0]).toHaveLength(79);
  });

  it('off a terminal writes whole lines, at most one per line interval, a closing line per phase and the summary', () => {
    const { writes, reporter, tick } = fixture(false);
    reporter.phase('comparing', { items: 10 });
    reporter.advance(2);
    tick(9_999);
    reporter.advance(2); // not yet
    tick(1);
    reporter.advance(1, 2048);
    tick(5_000);
    reporter.advance(5);
    reporter.done('summary');
    expect(writes).toEqual([
      'reconcile: comparing: 5/10 items, 2.0 KiB (50%), 10.0s\n',
      'reconcile: comparing: 10/10 items, 2.0 KiB, done in 15.0s\n',
      'summary\n',
    ]);
    expect(writes.join('')).not.toContain('\r');
  });

  it('takes a new total for the phase under way, and ends without a summary when given none', () => {
    const { writes, reporter, tick } = fixture(true);
    reporter.phase('links', { items: 2 });
    reporter.advance(2);
    reporter.retotal({ items: 8 }); // deletes queued more
    tick(100);
    reporter.advance(2);
    reporter.done();
    expect(writes.slice(1)).toEqual([
      '\r\x1b[2Kreconcile: links [############------------] 50% 4/8 items 100ms',
      '\r\x1b[2Kreconcile: links: 4/8 items, done in 100ms\n',
    ]);
  });

  it('shows a phase with nothing to do as complete', () => {
    const { writes, reporter } = fixture(true);
    reporter.phase('checking', { items: 0 });
    expect(writes[0]).toContain('[########################] 100%');
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [20 * 1024 ** 3, '20.0 GiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
  ])('%d bytes is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [12_340, '12.3s'],
    [245_000, '4m05s'],
    [86_400_000, '24h00m'],
    [7_380_000, '2h03m'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
