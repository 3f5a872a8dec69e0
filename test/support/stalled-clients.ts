import { connect, type Socket } from 'node:net';

/** The head of an answer as a raw client saw it, and for a non-200 answer its whole body. */
export interface AnswerHead {
  status: number;
  headers: Record<string, string>;
  /** The body, read in full, for any status but 200 (error answers are small). */
  body?: Buffer;
}

/**
 * A request on a raw socket whose client reads the answer's head and then stops reading: the
 * kernel's buffers fill and the server's writes stall, as with a client that hung or went to
 * sleep. Answers other than 200 are read in full (they are small errors the test looks at).
 * A paused socket does not notice the server closing it; `drain` reads on to find out.
 */
export class StalledReader {
  private buffered = Buffer.alloc(0);
  private head?: AnswerHead;
  private bodyBytes = 0;
  private readonly closed: Promise<void>;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined); // a reset is one way for the server to let go
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.once('close', () => this.notify());
  }

  /** Sends `method path` with `headers` (no body) to `baseUrl`. */
  static async open(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}): Promise<StalledReader> {
    const { hostname, port } = new URL(baseUrl);
    const socket = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    return new StalledReader(socket);
  }

  /**
   * The answer's head (and a non-200 body), or undefined when the connection closed without one;
   * throws after `timeoutMs` without either.
   */
  async answer(timeoutMs: number): Promise<AnswerHead | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer head within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, left);
        const waiters = this.waiters;
        function finish() {
          clearTimeout(timer);
          waiters.delete(finish);
          resolve();
        }
        waiters.add(finish);
      });
    }
    return this.head && (this.head.status === 200 || this.head.body) ? this.head : undefined;
  }

  /**
   * Starts reading again and resolves, once the connection closed, with the number of body bytes
   * that came; rejects after `timeoutMs` (a server that still holds the connection open).
   */
  async drain(timeoutMs: number): Promise<number> {
    this.socket.resume();
    await within(this.closed, timeoutMs, 'the connection closing');
    return this.bodyBytes;
  }

  /** Drops the connection (the client goes away). */
  destroy(): void {
    this.socket.destroy();
  }

  private done(): boolean {
    return this.socket.destroyed || (this.head !== undefined && (this.head.status === 200 || this.head.body !== undefined));
  }

  private onData(chunk: Buffer): void {
    if (this.head?.status === 200) {
      this.bodyBytes += chunk.length;
      return;
    }
    this.buffered = Buffer.concat([this.buffered, chunk]);
    if (!this.head) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = this.buffered.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      this.head = { status: Number(statusLine.split(' ')[1]), headers };
      this.buffered = this.buffered.subarray(end + 4);
      if (this.head.status === 200) this.bodyBytes = this.buffered.length;
      // Stop reading now: what the server writes from here on piles up in the buffers.
      if (this.head.status === 200) this.socket.pause();
    }
    const length = Number(this.head.headers['content-length'] ?? 0);
    if (this.head.status !== 200 && this.buffered.length >= length) this.head.body = this.buffered.subarray(0, length);
    this.notify();
  }

  private notify(): void {
    for (const f of [...this.waiters]) f();
  }
}

/** Resolves with `promise`, or rejects naming `what` when it takes more than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
