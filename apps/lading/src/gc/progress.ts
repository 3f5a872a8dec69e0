/*
 * Progress of a long-running command (`lading gc reconcile`, `lading gc run`): on a terminal one
 * line redrawn in place (a bar when the totals are known), otherwise a plain line now and then
 * (logs and CI keep every line, so they must be few and whole); a line at the end of each phase
 * and a summary at the end either way. Written to stderr by default, so stdout keeps only the
 * command's result (`--json`).
 */

/** Where progress goes: `process.stderr` or a fake. */
export interface ProgressStream {
  write(text: string): unknown;
  /** A terminal: redraw one line in place. Otherwise plain lines. */
  isTTY?: boolean;
  /** The terminal's width in characters. */
  columns?: number;
}

/** Where a command writes: its result and its progress. */
export interface CommandOutput {
  out: { write(text: string): unknown };
  err: ProgressStream;
}

/** What a phase is expected to cover, when known: draws a bar and a percentage. */
export interface ProgressTotals {
  items?: number;
  bytes?: number;
}

/** What a command reports its progress to; {@link ProgressReporter} or {@link NO_PROGRESS}. */
export interface ProgressSink {
  /** Starts phase `name` (ending the one before), its counters at zero. */
  phase(name: string, totals?: ProgressTotals): void;
  /** Counts `items` more done in the current phase, holding `bytes` more. */
  advance(items: number, bytes?: number): void;
}

/** A sink that shows nothing. */
export const NO_PROGRESS: ProgressSink = { phase: () => undefined, advance: () => undefined };

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** Starts every line (`reconcile`). */
  label: string;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /** Not on a terminal: the least time between two progress lines, in ms (default 10 s). */
  lineInterval?: number;
  /** On a terminal: the least time between two redraws, in ms (default 100). */
  redrawInterval?: number;
  /** A clock in milliseconds, for the intervals and elapsed times; tests pass a fake. */
  now?: () => number;
}

const BAR_WIDTH = 24;

/**
 * Shows the progress of a command in phases (see the file comment). Not thread-safe in any
 * sense that matters here: one command drives it.
 */
export class ProgressReporter implements ProgressSink {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly lineInterval: number;
  private readonly redrawInterval: number;
  private name: string | undefined;
  private totals: ProgressTotals = {};
  private items = 0;
  private bytes = 0;
  private phaseStart = 0;
  private lastShown = 0;
  private drawn = false;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.lineInterval = options.lineInterval ?? 10_000;
    this.redrawInterval = options.redrawInterval ?? 100;
  }

  /** {@inheritDoc ProgressSink.phase} */
  phase(name: string, totals: ProgressTotals = {}): void {
    this.endPhase();
    this.name = name;
    this.totals = totals;
    this.items = 0;
    this.bytes = 0;
    this.phaseStart = this.now();
    this.lastShown = this.phaseStart;
    if (this.tty) this.draw();
  }

  /** {@inheritDoc ProgressSink.advance} */
  advance(items: number, bytes = 0): void {
    this.items += items;
    this.bytes += bytes;
    const now = this.now();
    if (now - this.lastShown < (this.tty ? this.redrawInterval : this.lineInterval)) return;
    this.lastShown = now;
    if (this.tty) this.draw();
    else this.stream.write(`${this.status()}\n`);
  }

  /**
   * Sets what the current phase is now expected to cover (a queue whose work grows as it goes);
   * the next redraw or line shows it.
   */
  retotal(totals: ProgressTotals): void {
    this.totals = totals;
  }

  /** Ends the last phase and writes `summary` (lines, without a final newline), if given. */
  done(summary?: string): void {
    this.endPhase();
    if (summary !== undefined) this.stream.write(`${summary}\n`);
  }

  /** Writes the current phase's closing line (replacing the bar on a terminal). */
  private endPhase(): void {
    if (this.name === undefined) return;
    const line = `${this.options.label}: ${this.name}: ${this.counts()}, done in ${formatDuration(this.now() - this.phaseStart)}`;
    this.stream.write(`${this.tty ? '\r\x1b[2K' : ''}${line}\n`);
    this.name = undefined;
    this.drawn = false;
  }

  private draw(): void {
    const width = Math.max(20, (this.stream.columns || 80) - 1); // 0 when the terminal reports no size
    const fraction = this.fraction();
    const bar =
      fraction === undefined
        ? ''
        : `[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}] ${Math.floor(fraction * 100)}% `;
    const line = `${this.options.label}: ${this.name} ${bar}${this.counts()} ${formatDuration(this.now() - this.phaseStart)}`;
    this.stream.write(`${this.drawn ? '\r\x1b[2K' : ''}${line.slice(0, width)}`);
    this.drawn = true;
  }

  /** A plain progress line. */
  private status(): string {
    const fraction = this.fraction();
    const percent = fraction === undefined ? '' : ` (${Math.floor(fraction * 100)}%)`;
    return `${this.options.label}: ${this.name}: ${this.counts()}${percent}, ${formatDuration(this.now() - this.phaseStart)}`;
  }

  private counts(): string {
    const { items, bytes } = this.totals;
    const itemText = items === undefined ? `${this.items} items` : `${this.items}/${items} items`;
    if (!bytes && !this.bytes) return itemText;
    return `${itemText}, ${formatBytes(this.bytes)}${bytes === undefined ? '' : `/${formatBytes(bytes)}`}`;
  }

  /** How much of the phase is done (by bytes when their total is known, else items), at most 1. */
  private fraction(): number | undefined {
    const { items, bytes } = this.totals;
    if (bytes) return Math.min(1, this.bytes / bytes);
    if (items) return Math.min(1, this.items / items);
    return items === 0 || bytes === 0 ? 1 : undefined;
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `bytes` in binary units, one decimal from KiB up: `512 B`, `1.5 KiB`, `20.0 GiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `ms` as `850ms`, `12.3s`, `4m05s` or `2h03m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}
