import { Readable, Writable } from 'node:stream';
import { RELAY_BUFFER_BYTES, relayBody } from './http.upstream';

const CHUNK = 64 * 1024;

/** A body of `count` chunks of 64 KiB, chunk i filled with i % 256. */
function body(count: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < count; i++) yield Buffer.alloc(CHUNK, i % 256);
    })(),
    { objectMode: false },
  );
}

/** A client connection that takes chunks only when told to (`release`), like a stalled socket. */
function stalledClient(): { sink: Writable; got: Buffer[]; release(): void } {
  const got: Buffer[] = [];
  let stalled = true;
  let pending: (() => void) | undefined;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      got.push(chunk);
      if (stalled) pending = callback;
      else callback();
    },
  });
  return {
    sink,
    got,
    release() {
      stalled = false;
      pending?.();
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r));
}

describe('relayBody (the gateway copying a service answer to its client)', () => {
  it('copies every byte in order and ends the client response', async () => {
    const got: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => void (got.push(c), setImmediate(cb)) });
    await relayBody(body(40), sink);
    const all = Buffer.concat(got);
    expect(all.length).toBe(40 * CHUNK);
    for (let i = 0; i < 40; i++) expect(all[i * CHUNK + CHUNK - 1]).toBe(i % 256);
    expect(sink.writableFinished).toBe(true);
  });

  it('lets up to RELAY_BUFFER_BYTES wait on a stalled client, then pauses the service, and resumes when the client drains', async () => {
    const upstream = body(64);
    const client = stalledClient();
    const relayed = relayBody(upstream, client.sink);
    await until(() => upstream.isPaused());
    // Paused at the first chunk that took the queue to the limit, not at the first write() that said false.
    expect(client.sink.writableLength).toBeGreaterThanOrEqual(RELAY_BUFFER_BYTES);
    expect(client.sink.writableLength).toBeLessThan(RELAY_BUFFER_BYTES + CHUNK);
    client.release();
    await relayed;
    expect(Buffer.concat(client.got).length).toBe(64 * CHUNK);
  });

  it('writes the chunks that arrive in one turn together (one writev), not a write each', async () => {
    const upstream = new Readable({ read() {} });
    for (let i = 0; i < 10; i++) upstream.push(Buffer.alloc(CHUNK, i)); // handed over in one turn once it flows
    upstream.push(null);
    const batches: number[] = [];
    const sink = new Writable({
      write: (_c, _e, cb) => void (batches.push(1), cb()),
      writev: (chunks, cb) => void (batches.push(chunks.length), cb()),
    });
    await relayBody(upstream, sink);
    expect(batches).toEqual([10]);
  });

  it('rejects and stops reading the service when the client goes away', async () => {
    const upstream = body(64);
    const client = stalledClient();
    const relayed = relayBody(upstream, client.sink);
    await until(() => upstream.isPaused());
    client.sink.destroy();
    await expect(relayed).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(upstream.destroyed).toBe(true);
  });

  it('rejects and cuts the client response when the service answer fails', async () => {
    const upstream = new Readable({ read() {} });
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const relayed = relayBody(upstream, sink);
    upstream.push(Buffer.alloc(10));
    upstream.destroy(new Error('upstream reset'));
    await expect(relayed).rejects.toThrow('upstream reset');
    expect(sink.destroyed).toBe(true);
    expect(sink.writableFinished).toBe(false);
  });
});
