import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { HeadersTooLargeError, MalformedRequestError, SizeInvalidError } from '@lading/contracts';
import type { LadingConfig } from '../config/lading.config';
import { writeOciErrorToSocket } from '../errors/oci-exception.filter';

/** What an app's HTTP server accepts and how long it waits for a byte. */
export interface HttpServerLimits {
  /** The largest request head (request line and headers) in bytes. */
  maxHeaderBytes: number;
  /** A connection with no byte in or out for this long is destroyed. */
  idleTimeoutMs: number;
  /** The whole head of a request must arrive within this. */
  headersTimeoutMs: number;
  /** The whole request must arrive within this; 0 is no limit. */
  requestTimeoutMs: number;
}

/** How long a connection stays open between two requests (the gateway's pool reuses them). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * The limits of a server from `http.*`. A service behind the gateway (`forwarded`) accepts a
 * head larger than the client's limit: the gateway adds the signed scope (which repeats the Host
 * and User-Agent, base64-encoded) and `X-Forwarded-Host` to a head that passed its own limit.
 */
export function httpServerLimits(http: LadingConfig['http'], role: 'public' | 'forwarded' = 'public'): HttpServerLimits {
  return {
    maxHeaderBytes: role === 'forwarded' ? forwardedHeadBytes(http.maxheaderbytes) : http.maxheaderbytes,
    idleTimeoutMs: http.timeouts.idle,
    headersTimeoutMs: http.timeouts.headers,
    requestTimeoutMs: http.timeouts.request,
  };
}

/** The largest head the gateway sends to a service for a client head of at most `clientLimit` bytes. */
export function forwardedHeadBytes(clientLimit: number): number {
  return 4 * clientLimit + 64 * 1024;
}

/**
 * Nest's Express adapter with a bounded HTTP server: Node's `maxHeaderSize` can only be set when
 * the server is created (Nest's own adapter creates it without options), so this adapter creates
 * it. A head over the limit gets 431 with the OCI error body instead of Node's bare status line;
 * a connection idle for `idleTimeoutMs` — a trickled or stalled body, a client that stops
 * reading its response, or a wait with nothing moving — is destroyed, which ends the request and
 * whatever it holds (a file handle, a pooled upstream connection).
 */
export class BoundedExpressAdapter extends ExpressAdapter {
  constructor(private readonly limits: HttpServerLimits) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    if (options?.httpsOptions) throw new Error('TLS is terminated in front of Lading; httpsOptions are not supported');
    const { maxHeaderBytes, idleTimeoutMs, headersTimeoutMs, requestTimeoutMs } = this.limits;
    const shortest = Math.min(headersTimeoutMs, requestTimeoutMs > 0 ? requestTimeoutMs : Infinity);
    const server: Server = createServer(
      {
        maxHeaderSize: maxHeaderBytes,
        headersTimeout: headersTimeoutMs,
        requestTimeout: requestTimeoutMs,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        // Node checks the head and request deadlines on this period (30 s by default).
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(shortest / 4))),
      },
      this.getInstance(),
    );
    server.timeout = idleTimeoutMs;
    server.on('timeout', (socket: Socket) => socket.destroy());
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, maxHeaderBytes));
    this.setHttpServer(server);
  }
}

/** Node's own answers to the other parser errors (what it sends when no 'clientError' listener exists). */
const PLAIN_ANSWERS: Record<string, string> = {
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

function answerClientError(err: NodeJS.ErrnoException, socket: Socket, maxHeaderBytes: number): void {
  // As Node does: answer only when no response of this connection has started.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    writeOciErrorToSocket(socket, new HeadersTooLargeError(maxHeaderBytes));
    return;
  }
  if (err.code === 'HPE_INVALID_CONTENT_LENGTH' || err.code === 'HPE_UNEXPECTED_CONTENT_LENGTH') {
    writeOciErrorToSocket(socket, new SizeInvalidError('invalid Content-Length', { reason: err.code }));
    return;
  }
  if (err.code?.startsWith('HPE_') && !(err.code in PLAIN_ANSWERS)) {
    // Any other parse error: Node's bare 400 carries no OCI body; this one does.
    writeOciErrorToSocket(socket, new MalformedRequestError(err.code));
    return;
  }
  socket.write(`HTTP/1.1 ${PLAIN_ANSWERS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
  socket.destroy();
}
