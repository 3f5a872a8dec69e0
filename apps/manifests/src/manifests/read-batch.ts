/**
 * Coalesces concurrent reads into one call of `read` per batch: a key asked for while a batch is
 * in flight waits for the next batch, which starts once that one ends, with every key asked for
 * meanwhile (up to `maxBatch`).
 *
 * The promise that keeps it exact without any invalidation: a key's answer always comes from a
 * `read` that started after the key was asked for. So a read served after a write was
 * acknowledged (its transaction committed, by any process) sees that write: joining a batch already
 * in flight would not promise that, since its statement may have started before the commit.
 */
export class ReadBatch<K, V> {
  private waiting: { key: K; settle: (outcome: { value: V } | { error: unknown }) => void }[] = [];
  private running = false;

  constructor(
    private readonly read: (keys: readonly K[]) => Promise<readonly V[]>,
    private readonly maxBatch: number,
  ) {
    if (!(maxBatch >= 1)) throw new RangeError(`ReadBatch: maxBatch must be at least 1, got ${maxBatch}`);
  }

  /** The value of `key`, from a `read` started after this call; rejects with that read's error. */
  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.waiting.push({ key, settle: (o) => ('value' in o ? resolve(o.value) : reject(o.error)) });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      try {
        const values = await this.read(batch.map((w) => w.key));
        batch.forEach((w, i) => w.settle({ value: values[i] }));
      } catch (error) {
        for (const w of batch) w.settle({ error });
      }
    }
    this.running = false;
  }
}
