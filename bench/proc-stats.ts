/**
 * What the kernel knows about a server process: resident memory and CPU time, read from /proc.
 * Linux only, like the registries' deployment targets.
 */
import { readFileSync, writeFileSync } from 'node:fs';

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
  /** The highest resident memory seen in the interval, bytes. */
  peakRss: number;
  /** How `peakRss` was obtained. */
  method: 'VmHWM' | 'VmRSS samples';
}

/**
 * Watches resident memory of `pids` during an interval: resets each VmHWM at `start()` and samples
 * VmRSS every `intervalMs`; `stop()` reports VmHWM (which also catches spikes between samples)
 * when the reset worked for a single process, else the highest summed RSS sample.
 */
export class MemoryWatch {
  private timer: NodeJS.Timeout | undefined;
  private startRss = 0;
  private maxSample = 0;
  private hwmUsable = false;

  constructor(
    private readonly pids: () => number[],
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    const pids = this.pids();
    this.hwmUsable = pids.length === 1 && resetPeakMemory(pids[0]);
    this.startRss = this.sample();
    this.maxSample = this.startRss;
    this.timer = setInterval(() => (this.maxSample = Math.max(this.maxSample, this.sample())), this.intervalMs);
  }

  stop(): MemoryPeak {
    clearInterval(this.timer);
    this.maxSample = Math.max(this.maxSample, this.sample());
    const pids = this.pids();
    const hwm = this.hwmUsable && pids.length === 1 ? readMemory(pids[0])?.hwm : undefined;
    return hwm !== undefined && Number.isFinite(hwm)
      ? { startRss: this.startRss, peakRss: Math.max(hwm, this.maxSample), method: 'VmHWM' }
      : { startRss: this.startRss, peakRss: this.maxSample, method: 'VmRSS samples' };
  }

  private sample(): number {
    return this.pids().reduce((sum, pid) => sum + (readMemory(pid)?.rss || 0), 0);
  }
}

/** CPU seconds used by `pids` together. */
export function cpuSecondsOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readCpuSeconds(pid) || 0), 0);
}
