import { readAhead } from './blob-upload.handler';

async function collect(source: AsyncIterable<Buffer>, slowConsumerMs = 0): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of source) {
    out.push(c);
    if (slowConsumerMs) await new Promise((r) => setTimeout(r, slowConsumerMs));
  }
  return out;
}

async function* pieces(count: number, size: number, gapMs = 0): AsyncIterable<Buffer> {
  for (let i = 0; i < count; i++) {
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
    yield Buffer.alloc(size, i % 256);
  }
}

async function* failing(): AsyncIterable<Buffer> {
  yield Buffer.alloc(10);
  throw new Error('connection reset');
}

describe('readAhead', () => {
  it('keeps every byte in order', async () => {
    const out = await collect(readAhead(pieces(100, 1000), 64 * 1024), 1);
    const expected = Buffer.concat(await collect(pieces(100, 1000)));
    expect(Buffer.concat(out).equals(expected)).toBe(true);
  });

  it('batches what arrived while the consumer was busy, up to the bound', async () => {
    const out = await collect(readAhead(pieces(200, 1000), 20_000), 5);
    expect(out.length).toBeLessThan(200);
    expect(Math.max(...out.map((b) => b.length))).toBeLessThanOrEqual(20_000 + 1000);
  });

  it('hands a slow source its bytes one by one, without waiting for a batch', async () => {
    const out = await collect(readAhead(pieces(5, 10, 20), 1 << 20));
    expect(out.map((b) => b.length)).toEqual([10, 10, 10, 10, 10]);
  });

  it('passes the source error on after the bytes that came before it', async () => {
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const c of readAhead(failing(), 1 << 20)) seen.push(c.length);
      })(),
    ).rejects.toThrow('connection reset');
    expect(seen).toEqual([10]);
  });
});
