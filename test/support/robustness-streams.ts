import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { Pool, type Dispatcher } from 'undici';

/**
 * Big test blobs that never sit in memory: the content is one random `unit` buffer repeated up
 * to `size` bytes, so any byte range can be generated again lazily (to resume an upload from an
 * offset) and the whole digest is computed by hashing as it is generated.
 */
export class RepeatedBlob {
  readonly unit: Buffer;

  constructor(
    readonly size: number,
    unitSize = 1024 * 1024,
  ) {
    this.unit = randomBytes(unitSize);
  }

  /** Lazily yields bytes [start, end) (end defaults to the blob's size), in slices of the unit. */
  async *bytes(start = 0, end = this.size, onChunk?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
    let position = start;
    while (position < end) {
      const from = position % this.unit.length;
      const take = Math.min(this.unit.length - from, end - position);
      const chunk = this.unit.subarray(from, from + take);
      onChunk?.(chunk);
      position += take;
      yield chunk;
    }
  }

  /** sha256 digest of bytes [start, end), computed by generating them. */
  async digest(start = 0, end = this.size): Promise<string> {
    const hash = createHash('sha256');
    for await (const c of this.bytes(start, end)) hash.update(c);
    return `sha256:${hash.digest('hex')}`;
  }

  /** The bytes [start, end) as one buffer: only for small ranges. */
  slice(start: number, end: number): Buffer {
    const parts: Buffer[] = [];
    let position = start;
    while (position < end) {
      const from = position % this.unit.length;
      const take = Math.min(this.unit.length - from, end - position);
      parts.push(this.unit.subarray(from, from + take));
      position += take;
    }
    return Buffer.concat(parts);
  }
}

/**
 * Passes `source` through, calling `onProgress(sent)` after each chunk; once `slowAfter` bytes
 * went out it waits `delayMs` before each further chunk, so bytes keep flowing, slowly, while a
 * test acts on the receiving process.
 */
export async function* throttled(
  source: AsyncIterable<Buffer>,
  options: { onProgress?: (sent: number) => void; slowAfter?: number; delayMs?: number } = {},
): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const c of source) {
    if (options.slowAfter !== undefined && sent >= options.slowAfter) {
      await new Promise((r) => setTimeout(r, options.delayMs ?? 10));
    }
    yield c;
    sent += c.length;
    options.onProgress?.(sent);
  }
}

/** Digest and size of a byte stream, hashed as it arrives (nothing kept). */
export async function hashStream(stream: AsyncIterable<Uint8Array>): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    hash.update(c);
    size += c.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Peak resident memory of process `pid` in bytes since the last `resetPeakRss` (VmHWM). */
export function peakRss(pid: number): number {
  return statusKb(pid, 'VmHWM') * 1024;
}

/** Current resident memory of process `pid` in bytes (VmRSS). */
export function currentRss(pid: number): number {
  return statusKb(pid, 'VmRSS') * 1024;
}

/**
 * Resets the kernel's peak-RSS counter of `pid` (writing 5 to /proc/<pid>/clear_refs), so the
 * next `peakRss` covers only what happens from now on. Returns false when the kernel refuses
 * (then the peak includes start-up, which only makes a bound stricter).
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function statusKb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** MiB with one decimal, for log lines. */
export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** The outcome of a hand-written HTTP exchange. */
export interface RawExchange {
  /** Whatever the server sent before the exchange ended (possibly nothing). */
  response: string;
  /** The status code, when a status line arrived. */
  status?: number;
}

/**
 * An HTTP/1.1 request written by hand on a raw socket, so a test controls exactly which bytes
 * go out and when: a body shorter than its Content-Length, a body that stalls half way, a body
 * finished later. No HTTP client library will send those.
 */
export class RawRequest {
  private received = '';
  private closed = false;
  private readonly changed = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d) => {
      this.received += d.toString('latin1');
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    // A reset after the server answered and closed is the end of the exchange, not a failure.
    socket.on('error', () => undefined);
  }

  /** Connects to `baseUrl` and sends `head` (request line and headers, without the blank line). */
  static async open(baseUrl: string, head: string): Promise<RawRequest> {
    const { hostname, port } = new URL(baseUrl);
    const socket = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`${head.replace(/\r?\n/g, '\r\n').trimEnd()}\r\n\r\n`);
    return new RawRequest(socket);
  }

  /** Sends more body bytes; resolves once they are handed to the kernel. */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  /** Half-closes the connection: the server sees the body end here. */
  end(): void {
    this.socket.end();
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Waits until a whole response arrived (status line, headers and Content-Length bytes), the
   * server closed the connection, or `timeoutMs` passed; then returns what came.
   */
  async response(timeoutMs = 5_000): Promise<RawExchange> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && !completeResponse(this.received) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        const changed = this.changed;
        function done() {
          clearTimeout(timer);
          changed.delete(done);
          resolve();
        }
        changed.add(done);
      });
    }
    const m = /^HTTP\/1\.1 (\d{3})/.exec(this.received);
    return { response: this.received, status: m ? Number(m[1]) : undefined };
  }

  private notify(): void {
    for (const f of [...this.changed]) f();
  }
}

function completeResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  return Buffer.byteLength(text.slice(end + 4), 'latin1') >= (length ? Number(length[1]) : 0);
}

/**
 * Sends `head` and `body` over a raw socket to `baseUrl`, then either half-closes the socket
 * (`close: 'end'`, the default) or drops it (`close: 'destroy'`) and returns whatever came back
 * within `timeoutMs`. This is how a test sends a body shorter than its Content-Length.
 */
export async function rawExchange(
  baseUrl: string,
  head: string,
  body: Buffer,
  options: { close?: 'end' | 'destroy'; timeoutMs?: number } = {},
): Promise<RawExchange> {
  const request = await RawRequest.open(baseUrl, head);
  try {
    await request.write(body);
    if (options.close === 'destroy') {
      await new Promise((r) => setTimeout(r, 100));
      request.destroy();
    } else {
      request.end();
    }
    return await request.response(options.timeoutMs);
  } finally {
    request.destroy();
  }
}

/** What a request got, and what the next request on the same keep-alive connection got. */
export interface ConnectionReuse {
  /** Status of the first request, or the error it failed with. */
  first: number | string;
  /** Status of a `GET /v2/` sent next on the same connection, or the error it failed with. */
  next: number | string;
}

/**
 * Sends one request on a fresh single-connection pool, then `GET /v2/` on that same connection,
 * each with a `timeoutMs` limit: whether a server that answered early (an error before reading
 * the body) left the keep-alive connection usable, or closed it as it should if it did not drain.
 */
export async function reuseAfter(
  baseUrl: string,
  request: { method: string; path: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer> },
  timeoutMs = 5_000,
): Promise<ConnectionReuse> {
  const pool = new Pool(baseUrl, { connections: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const outcome = (r: Promise<Dispatcher.ResponseData>) =>
    r.then(
      async (res) => {
        await res.body.arrayBuffer();
        return res.statusCode;
      },
      (e: Error) => `${e.name}: ${e.message}`,
    );
  try {
    const first = await outcome(
      pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: request.path,
        headers: request.headers,
        // undici streams any async iterable; its types list only Node streams.
        body: request.body as Buffer,
      }),
    );
    const next = await outcome(pool.request({ method: 'GET', path: '/v2/' }));
    return { first, next };
  } finally {
    await pool.destroy();
  }
}
