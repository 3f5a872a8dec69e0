/**
 * Writing a stream of small buffers (a request body arrives in 16–64 KiB pieces) to a file in
 * large writes without allocating per write: the pieces are copied into one of two reused slabs
 * while the other is being written. Concatenating the pieces instead (`Buffer.concat`) made a new
 * large buffer per write, and V8 frees those only at its next GC: a 1 GiB push left tens of MB of
 * dead buffers resident at a time. Here a write part holds two slabs whatever its size, and each
 * piece can be collected as soon as it is copied.
 */

/** Bytes of one slab: the largest single write. */
export const SLAB_BYTES = 1024 * 1024;

/** Slabs kept for reuse between parts, across the process (each SLAB_BYTES). */
const POOL_MAX = 4;

/** Where the slabs go: a positional write of `length` bytes of `buffer` at `position` (bytes written). */
export type PositionalWrite = (buffer: Buffer, offset: number, length: number, position: number) => Promise<number>;

/** A bounded pool of slabs, so parts after the first allocate none. */
export class SlabPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slabBytes = SLAB_BYTES,
    private readonly max = POOL_MAX,
  ) {}

  /** A slab (reused or new); give it back with `release` when no write uses it any more. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
  }

  /** Keeps `slab` for the next `take`, unless the pool is full (then it is left to the GC). */
  release(slab: Buffer): void {
    if (this.free.length < this.max && slab.length === this.slabBytes) this.free.push(slab);
  }

  /** How many slabs wait in the pool (for tests). */
  get idle(): number {
    return this.free.length;
  }
}

const sharedPool = new SlabPool();

/**
 * Writes every byte of `source`, in order, from `start`, through `write`: at most one write in
 * flight, of at most one slab. While it runs, the next pieces are copied into the other slab; a
 * slow source gets each piece written as soon as no write is running (no waiting for a full
 * slab), a fast one gets full slabs. `afterWrite` runs after each write with the bytes written
 * so far (for periodic syncs); it must not throw. Resolves with the byte count once every write
 * finished; on a source or write error, rejects after the write in flight settled (so the
 * caller may close the file).
 */
export async function writeThroughSlabs(
  source: AsyncIterable<Uint8Array>,
  write: PositionalWrite,
  start = 0,
  afterWrite?: (written: number) => void,
  pool: SlabPool = sharedPool,
): Promise<number> {
  const slabs: Buffer[] = [];
  let current: Buffer | undefined;
  let filled = 0;
  let position = start;
  let inFlight: Promise<void> | undefined;
  let failed: { error: unknown } | undefined;
  let spare: Buffer | undefined; // the slab of the write that finished last

  const writeAll = async (slab: Buffer, length: number, at: number): Promise<void> => {
    for (let done = 0; done < length; ) done += await write(slab, done, length - done, at + done);
  };
  /** Starts writing the current slab's bytes (after the write in flight) and moves to the other slab. */
  const flush = async (): Promise<void> => {
    if (inFlight) await inFlight;
    if (failed) throw failed.error;
    if (!current || filled === 0) return;
    const slab = current;
    const length = filled;
    const at = position;
    position += length;
    current = spare;
    spare = undefined;
    filled = 0;
    inFlight = writeAll(slab, length, at).then(
      () => {
        spare = slab;
        afterWrite?.(position - start);
      },
      (error: unknown) => void (failed ??= { error }),
    ).finally(() => (inFlight = undefined));
  };
  const takeSlab = (): Buffer => {
    const slab = pool.take();
    slabs.push(slab);
    return slab;
  };

  try {
    for await (const piece of source) {
      if (failed) throw failed.error;
      let offset = 0;
      while (offset < piece.byteLength) {
        current ??= takeSlab();
        const n = Math.min(piece.byteLength - offset, current.length - filled);
        current.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === current.length) await flush();
      }
      if (!inFlight && filled > 0) await flush();
    }
    await flush();
    if (inFlight) await inFlight;
    if (failed) throw failed.error;
    return position - start;
  } finally {
    if (inFlight) await inFlight;
    for (const slab of slabs) pool.release(slab);
  }
}
