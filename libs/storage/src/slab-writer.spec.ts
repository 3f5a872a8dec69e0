import { randomBytes } from 'node:crypto';
import { SlabPool, writeThroughSlabs, type PositionalWrite } from './slab-writer';

/** A file in memory that records each write: the buffer it was given and the bytes. */
function fakeFile(options: { maxPerWrite?: number; failAt?: number } = {}) {
  const file: Buffer[] = [];
  const writes: { buffer: Buffer; length: number; position: number }[] = [];
  let pending: (() => void)[] = [];
  let manual = false;
  const write: PositionalWrite = async (buffer, offset, length, position) => {
    const n = Math.min(length, options.maxPerWrite ?? length);
    if (options.failAt !== undefined && position + n > options.failAt) throw new Error('EIO');
    writes.push({ buffer, length: n, position });
    file.push(Buffer.from(buffer.subarray(offset, offset + n)));
    if (manual) await new Promise<void>((resolve) => pending.push(resolve));
    return n;
  };
  return {
    write,
    writes,
    bytes: () => Buffer.concat(file),
    /** From now on each write waits for `release()`. */
    hold: () => (manual = true),
    release: () => {
      const p = pending;
      pending = [];
      p.forEach((r) => r());
    },
    waiting: () => pending.length,
  };
}

/** Lets other work run until `done()`, for a bounded number of turns (then fails, rather than hang). */
async function turnsUntil(done: () => boolean): Promise<void> {
  for (let turn = 0; !done(); turn++) {
    if (turn > 1000) throw new Error('the condition never came true');
    await new Promise((r) => setImmediate(r));
  }
}

async function* piecesOf(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('writeThroughSlabs', () => {
  it('writes every byte in order, through two reused slabs of the pool size at most', async () => {
    const pool = new SlabPool(64 * 1024, 4);
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const file = fakeFile();
    const n = await writeThroughSlabs(piecesOf(data, 16_384 + 7), file.write, 0, undefined, pool);
    expect(n).toBe(data.length);
    expect(file.bytes().equals(data)).toBe(true);
    // A 5 MiB input never got a buffer of its own: every write came from one of two slabs.
    expect(new Set(file.writes.map((w) => w.buffer)).size).toBeLessThanOrEqual(2);
    expect(Math.max(...file.writes.map((w) => w.length))).toBeLessThanOrEqual(64 * 1024);
    expect(file.writes.every((w) => w.buffer.length === 64 * 1024)).toBe(true);
    // The slabs went back to the pool, and the next part takes them instead of allocating.
    expect(pool.idle).toBe(2);
    const next = fakeFile();
    await writeThroughSlabs(piecesOf(data.subarray(0, 200_000), 50_000), next.write, 0, undefined, pool);
    expect(next.writes.every((w) => file.writes.some((f) => f.buffer === w.buffer))).toBe(true);
  });

  it('copies what arrives during a write into the other slab, and writes it as one when the write ends', async () => {
    const pool = new SlabPool(1024 * 1024, 4);
    const file = fakeFile();
    file.hold();
    const data = randomBytes(10 * 1000);
    let fed = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 10; i++) {
        fed = i + 1;
        yield data.subarray(i * 1000, (i + 1) * 1000);
        // Let the writer run: its first piece's write is now held.
        await new Promise((r) => setImmediate(r));
      }
    }
    const done = writeThroughSlabs(source(), file.write, 100, undefined, pool);
    await turnsUntil(() => fed === 10);
    // The first piece is being written; the nine after it were copied meanwhile, not written.
    expect(file.writes.map((w) => [w.position, w.length])).toEqual([[100, 1000]]);
    file.release();
    await turnsUntil(() => file.waiting() > 0);
    expect(file.writes.map((w) => [w.position, w.length])).toEqual([[100, 1000], [1100, 9000]]);
    file.release();
    expect(await done).toBe(10_000);
    expect(file.bytes().equals(data)).toBe(true);
  });

  it('finishes partial writes, and reports progress after each write', async () => {
    const data = randomBytes(300_000);
    const file = fakeFile({ maxPerWrite: 10_000 });
    const progress: number[] = [];
    await writeThroughSlabs(piecesOf(data, 65_536), file.write, 0, (n) => progress.push(n), new SlabPool(100_000, 2));
    expect(file.bytes().equals(data)).toBe(true);
    expect(progress[progress.length - 1]).toBe(data.length);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('rejects with a write error and stops reading the source, returning its slabs', async () => {
    const pool = new SlabPool(4096, 4);
    const file = fakeFile({ failAt: 10_000 });
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield Buffer.alloc(4096, 1);
        await new Promise((r) => setImmediate(r));
      }
    }
    await expect(writeThroughSlabs(source(), file.write, 0, undefined, pool)).rejects.toThrow('EIO');
    expect(pulled).toBeLessThan(10);
    expect(pool.idle).toBe(2);
  });

  it('passes a source error on after the write in flight settled', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(10, 7);
      throw new Error('connection reset');
    }
    const file = fakeFile();
    await expect(writeThroughSlabs(failing(), file.write, 0, undefined, new SlabPool(1024, 2))).rejects.toThrow('connection reset');
    expect(file.bytes().equals(Buffer.alloc(10, 7))).toBe(true);
  });

  it('keeps no more slabs than its bound', () => {
    const pool = new SlabPool(16, 2);
    const slabs = [pool.take(), pool.take(), pool.take()];
    slabs.forEach((s) => pool.release(s));
    expect(pool.idle).toBe(2);
    pool.release(Buffer.alloc(8)); // not a slab of this pool
    expect(pool.idle).toBe(2);
  });
});
