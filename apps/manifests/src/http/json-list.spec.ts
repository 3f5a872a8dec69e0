import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import { streamJsonList } from './json-list';

/** A response that records its writes and answers `write()` with `accept` (false: the socket pushes back). */
class FakeResponse extends EventEmitter {
  readonly writes: string[] = [];
  ended?: string;
  status?: number;
  destroyed = false;
  accept = true;
  constructor(readonly req = { method: 'GET' }) {
    super();
  }
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(chunk: string): boolean {
    this.writes.push(chunk);
    return this.accept;
  }
  end(chunk?: string): this {
    this.ended = chunk ?? '';
    return this;
  }
  body(): string {
    return this.writes.join('') + (this.ended ?? '');
  }
}

/** Batches of names, recording how many writes the response had when each batch was asked for, and whether it was closed. */
function recordingBatches(res: FakeResponse, batches: string[][]) {
  const log = { writesAtFetch: [] as number[], closed: false };
  async function* generate(): AsyncGenerator<string[], void, undefined> {
    try {
      for (const b of batches) {
        log.writesAtFetch.push(res.writes.length);
        yield b;
      }
      log.writesAtFetch.push(res.writes.length);
    } finally {
      log.closed = true;
    }
  }
  return { log, batches: generate() };
}

const HEAD = '{"name":"a/b","tags":';
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('streamJsonList (a tag list written batch by batch)', () => {
  it('writes each batch before it asks for the next one, so the list is never held whole', async () => {
    const res = new FakeResponse();
    const { log, batches } = recordingBatches(res, [['a', 'b'], ['c'], ['d', 'e']]);
    await streamJsonList(res as unknown as Response, HEAD, batches);
    // Fetching everything first (a list built in memory) would give [0, 0, 0, 0].
    expect(log.writesAtFetch).toEqual([0, 1, 2, 3]);
    expect(res.writes).toHaveLength(3);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body())).toEqual({ name: 'a/b', tags: ['a', 'b', 'c', 'd', 'e'] });
    expect(log.closed).toBe(true);
  });

  it('asks for no batch while the socket pushes back, and goes on after drain', async () => {
    const res = new FakeResponse();
    res.accept = false;
    const { log, batches } = recordingBatches(res, [['a'], ['b'], ['c']]);
    const done = streamJsonList(res as unknown as Response, HEAD, batches);
    await turn();
    expect(log.writesAtFetch).toEqual([0]);
    expect(res.writes).toHaveLength(1);
    res.accept = true;
    res.emit('drain');
    await done;
    expect(log.writesAtFetch).toEqual([0, 1, 2, 3]);
    expect(JSON.parse(res.body())).toEqual({ name: 'a/b', tags: ['a', 'b', 'c'] });
  });

  it('stops fetching and closes the batches when the client goes away while the socket pushes back', async () => {
    const res = new FakeResponse();
    res.accept = false;
    const { log, batches } = recordingBatches(res, [['a'], ['b'], ['c']]);
    const done = streamJsonList(res as unknown as Response, HEAD, batches);
    await turn();
    res.destroyed = true;
    res.emit('close');
    await done;
    expect(log.writesAtFetch).toEqual([0]);
    expect(log.closed).toBe(true);
    expect(res.ended).toBeUndefined();
  });

  it('writes an empty array for no batch at all', async () => {
    const res = new FakeResponse();
    const { batches } = recordingBatches(res, []);
    await streamJsonList(res as unknown as Response, HEAD, batches);
    expect(res.writes).toEqual([]);
    expect(JSON.parse(res.body())).toEqual({ name: 'a/b', tags: [] });
  });

  it('escapes each name as JSON', async () => {
    const res = new FakeResponse();
    const { batches } = recordingBatches(res, [['a"b', 'c\\d']]);
    await streamJsonList(res as unknown as Response, HEAD, batches);
    expect(JSON.parse(res.body()).tags).toEqual(['a"b', 'c\\d']);
  });

  it('answers a HEAD with no body once the first batch came, fetching no more', async () => {
    const res = new FakeResponse({ method: 'HEAD' });
    const { log, batches } = recordingBatches(res, [['a'], ['b']]);
    await streamJsonList(res as unknown as Response, HEAD, batches);
    expect(res.status).toBe(200);
    expect(res.body()).toBe('');
    expect(log.writesAtFetch).toEqual([0]);
    expect(log.closed).toBe(true);
  });

  it('rejects before writing the head when the first batch fails (so the error still becomes an OCI answer)', async () => {
    const res = new FakeResponse();
    async function* failing(): AsyncGenerator<string[], void, undefined> {
      throw new Error('NAME_UNKNOWN');
    }
    await expect(streamJsonList(res as unknown as Response, HEAD, failing())).rejects.toThrow('NAME_UNKNOWN');
    expect(res.status).toBeUndefined();
    expect(res.writes).toEqual([]);
  });
});
