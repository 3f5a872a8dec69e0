import { createServer, type Server } from 'node:http';
import { Client } from 'undici';
import type { TestResponse } from '@lading/testing';

/** A request exactly as a service receives it from the gateway: head fields and body. */
export interface CapturedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * An HTTP server standing in for the services behind a gateway: it records every request the
 * gateway forwards (signature and scope included) and answers 202, so a test can send those
 * requests to the real services later — a captured request, replayed.
 */
export class RequestTap {
  readonly captured: CapturedRequest[] = [];

  private constructor(private readonly server: Server) {}

  /** Starts the tap on a free loopback port. */
  static async start(): Promise<RequestTap> {
    const server = createServer();
    const tap = new RequestTap(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        tap.captured.push({ method: req.method!, url: req.url!, headers, body: Buffer.concat(chunks) });
        res.writeHead(202, { 'content-length': 0 }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return tap;
  }

  /** The tap's base URL. */
  get url(): string {
    const { port } = this.server.address() as { port: number };
    return `http://127.0.0.1:${port}`;
  }

  /** The last request captured. */
  last(): CapturedRequest {
    const r = this.captured[this.captured.length - 1];
    if (!r) throw new Error('the tap captured no request');
    return r;
  }

  /** Stops the tap. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** What to change in a captured request before sending it again. */
export interface ReplayChange {
  /** Header values to set (undefined removes the header). */
  headers?: Record<string, string | undefined>;
  /** Another body (its Content-Length follows unless `chunked`). */
  body?: Buffer;
  /** Send the body chunked, without Content-Length. */
  chunked?: boolean;
}

/** Sends a captured request to `baseUrl` on a connection of its own, the same or with `change`. */
export async function replay(baseUrl: string, request: CapturedRequest, change: ReplayChange = {}): Promise<TestResponse> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) if (!['host', 'connection', 'transfer-encoding'].includes(k)) headers[k] = v;
  for (const [k, v] of Object.entries(change.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  const body = change.body ?? request.body;
  if (change.chunked) delete headers['content-length'];
  else if (change.body) headers['content-length'] = String(body.length);
  const client = new Client(baseUrl);
  try {
    const res = await client.request({
      method: request.method as never,
      path: request.url,
      headers,
      body: change.chunked ? (oneChunk(body) as never) : request.method === 'GET' || request.method === 'HEAD' ? undefined : body,
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status: res.statusCode, headers: out, body: bytes, json: () => JSON.parse(bytes.toString('utf8')) };
  } finally {
    await client.destroy();
  }
}

async function* oneChunk(body: Buffer): AsyncGenerator<Buffer> {
  yield body;
}
