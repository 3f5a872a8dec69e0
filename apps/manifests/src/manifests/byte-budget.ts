/**
 * A first-come-first-served semaphore over bytes: at most `capacity` bytes of work run at once.
 * Work larger than the capacity takes all of it (it runs alone, never refused).
 */
export class ByteBudget {
  private available: number;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`ByteBudget: capacity must be positive, got ${capacity}`);
    this.available = capacity;
  }

  /** Runs `work` once `bytes` of the budget are free (in arrival order), and frees them after. */
  async run<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    const n = Math.min(Math.max(bytes, 0), this.capacity);
    await this.acquire(n);
    try {
      return await work();
    } finally {
      this.release(n);
    }
  }

  private acquire(n: number): Promise<void> {
    if (this.waiting.length === 0 && n <= this.available) {
      this.available -= n;
      return Promise.resolve();
    }
    return new Promise((grant) => this.waiting.push({ bytes: n, grant }));
  }

  private release(n: number): void {
    this.available += n;
    while (this.waiting.length > 0 && this.waiting[0].bytes <= this.available) {
      const next = this.waiting.shift()!;
      this.available -= next.bytes;
      next.grant();
    }
  }
}
