/**
 * What the kernel knows about a server process: resident memory and CPU time, read from /proc.
 * Linux only, like the registries' deployment targets.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux ABI Node runs on). */
const USER_HZ = 100;

/** Resident set size now and its high-water mark, in bytes; undefined once the process is gone. */
export function readMemory(pid: number): { rss: number; hwm: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * Resets the process's VmHWM to its current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0),
 * so a later VmHWM is the peak of what happened in between. False when the kernel refused.
 */
export function resetPeakMemory(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU seconds the process (all its threads) has used so far; NaN once it is gone. */
export function readCpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return NaN;
  }
  // Fields after the parenthesised command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[14 - 3]) + Number(fields[15 - 3])) / USER_HZ;
}

/** The pid and its descendants (a split deployment, or a wrapper that forks). */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      // gone, or a kernel without the children file: the process alone then
    }
    all.push(...tasks.map(Number));
  }
  return all;
}

/** Peak memory of a set of processes over one measured interval. */
export interface MemoryPeak {
  /** RSS summed over the processes when the interval started, bytes. */
  startRss: number;
  /**
   * The highest resident memory of the set in the interval, bytes: for one process its peak; for
   * several, the sum of each one's peak (an upper bound: they need not peak at the same moment).
   */
  peakRss: number;
  /** Each process's own peak, bytes. */
  peakByPid: Map<number, number>;
  /** How the peaks were obtained. */
  method: 'VmHWM' | 'VmRSS samples';
}

/**
 * Watches resident memory of `pids` during an interval: resets each process's VmHWM at `start()`
 * and samples VmRSS every `intervalMs`; `stop()` reports VmHWM (which also catches spikes between
 * samples) when every reset worked and the set of processes did not change, else the samples.
 */
export class MemoryWatch {
  private timer: NodeJS.Timeout | undefined;
  private startPids: number[] = [];
  private startRss = 0;
  private maxSum = 0;
  private readonly maxByPid = new Map<number, number>();
  private hwmUsable = false;

  constructor(
    private readonly pids: () => number[],
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.startPids = this.pids();
    this.hwmUsable = this.startPids.length > 0 && this.startPids.every((pid) => resetPeakMemory(pid));
    this.startRss = this.sample();
    this.maxSum = this.startRss;
    this.timer = setInterval(() => (this.maxSum = Math.max(this.maxSum, this.sample())), this.intervalMs);
  }

  stop(): MemoryPeak {
    clearInterval(this.timer);
    this.maxSum = Math.max(this.maxSum, this.sample());
    const pids = this.pids();
    const samePids = pids.length === this.startPids.length && pids.every((pid) => this.startPids.includes(pid));
    const hwms = this.hwmUsable && samePids ? pids.map((pid) => readMemory(pid)?.hwm ?? NaN) : [];
    if (hwms.length > 0 && hwms.every(Number.isFinite)) {
      const peakByPid = new Map(pids.map((pid, i) => [pid, Math.max(hwms[i], this.maxByPid.get(pid) ?? 0)]));
      const sum = [...peakByPid.values()].reduce((a, b) => a + b, 0);
      return { startRss: this.startRss, peakRss: Math.max(sum, this.maxSum), peakByPid, method: 'VmHWM' };
    }
    return {
      startRss: this.startRss,
      peakRss: this.maxSum,
      peakByPid: new Map(this.maxByPid),
      method: 'VmRSS samples',
    };
  }

  private sample(): number {
    let sum = 0;
    for (const pid of this.pids()) {
      const rss = readMemory(pid)?.rss || 0;
      this.maxByPid.set(pid, Math.max(rss, this.maxByPid.get(pid) ?? 0));
      sum += rss;
    }
    return sum;
  }
}

/** CPU seconds used by `pids` together. */
export function cpuSecondsOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readCpuSeconds(pid) || 0), 0);
}

/** The pids whose `comm` is `name` and whose command line passes `match`; a scan of /proc. */
export function findProcesses(name: string, match: (cmdline: string) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== name) continue;
      if (match(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The test PostgreSQL's backends serving `database` (found by their process title, `postgres: <user> <database> …`). */
export function databaseBackends(database: string): number[] {
  return findProcesses('postgres', (cmd) => cmd.startsWith('postgres: ') && cmd.split(/\s+/)[2] === database);
}

/** The MinIO server processes listening on `endpoint`'s port (the shared test MinIO: not ours, it keeps running). */
export function minioProcesses(endpoint: string): number[] {
  const port = new URL(endpoint).port;
  return findProcesses('minio', (cmd) => cmd.includes(' server ') && cmd.includes(`:${port}`));
}
