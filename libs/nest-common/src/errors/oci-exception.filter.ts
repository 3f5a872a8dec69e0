import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Response } from 'express';
import { API_VERSION, isOciCoded, ociErrorBody, ociErrorStatus, type OciCoded } from '@lading/contracts';

/**
 * The one place where errors become HTTP: an OCI-coded error answers with its status and the
 * `{"errors":[…]}` body; Nest's own HTTP exceptions (unknown route, bad method) are mapped to the
 * nearest OCI code; anything else is a bug, logged and answered as 500 UNKNOWN.
 */
@Catch()
export class OciExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('OciExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    writeOciError(res, exception, this.logger);
  }
}

/** Writes `exception` to `res` as an OCI error (or cuts the connection if a body already started). */
export function writeOciError(res: Response, exception: unknown, logger?: Logger): void {
  const coded = toOciCoded(exception);
  const status = ociErrorStatus(coded);
  if (status >= 500) logger?.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { headers, body } = ociErrorResponse(coded);
  const send = (close: boolean) => {
    if (res.headersSent || res.destroyed) return;
    if (close) res.setHeader('Connection', 'close');
    res.status(status);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.end(res.req?.method === 'HEAD' ? undefined : body);
  };
  const req = res.req;
  if (!req || req.complete) send(false);
  else if (req.destroyed) send(true); // its reader gave up on it: unread bytes may follow
  else drainRequest(req).then((keep) => send(!keep), () => send(true));
}

/**
 * Answers on a bare socket that the HTTP parser gave up on (no request object exists, as for a
 * head over the size limit), with the same status, headers and body as the filter, then closes
 * it. Call it only when no response of the connection has started.
 */
export function writeOciErrorToSocket(socket: Duplex, error: OciCoded): void {
  if (socket.writable) {
    const status = ociErrorStatus(error);
    const { headers, body } = ociErrorResponse(error);
    const head = Object.entries({ ...headers, Connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head.join('')}\r\n${body}`);
  }
  // Destroyed, not ended: the parser is in an error state and would raise the same error again
  // on every further byte. The answer is already in the kernel's buffer.
  socket.destroy();
}

function ociErrorResponse(error: OciCoded): { headers: Record<string, string | number>; body: string } {
  const body = JSON.stringify(ociErrorBody(error));
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Docker-Distribution-API-Version': API_VERSION,
    'Content-Length': Buffer.byteLength(body),
  };
  if (error.retryAfterSeconds !== undefined) headers['Retry-After'] = error.retryAfterSeconds;
  return { headers, body };
}

const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
const DRAIN_TIMEOUT_MS = 15_000;

/**
 * An error found before the request body was read leaves the client's bytes on the connection.
 * Reading and dropping them (up to a bound) keeps the connection usable — for clients, and for
 * the gateway's pooled connections to the services; past the bound the answer closes it instead.
 * Resolves with whether the connection may be kept.
 */
function drainRequest(req: NonNullable<Response['req']>): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (keep: boolean) => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
      if (!keep) req.pause();
      resolve(keep);
    };
    const onData = (c: Buffer) => {
      seen += c.length;
      if (seen > DRAIN_LIMIT_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onError = () => finish(false);
    const timer = setTimeout(() => finish(false), DRAIN_TIMEOUT_MS);
    // An abandoned async iterator keeps the stream in paused mode through its 'readable' listener.
    req.removeAllListeners('readable');
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.resume();
  });
}

function toOciCoded(e: unknown): OciCoded {
  if (isOciCoded(e)) return e;
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const code = status === 404 ? 'NAME_UNKNOWN' : status === 405 ? 'UNSUPPORTED' : status < 500 ? 'UNSUPPORTED' : 'UNKNOWN';
    return { ociCode: code, message: e.message, httpStatus: status };
  }
  const err = e as { type?: string; status?: number; message?: string } | null;
  if (err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    return { ociCode: 'UNSUPPORTED', message: err.message ?? 'bad request', httpStatus: err.status };
  }
  return { ociCode: 'UNKNOWN', message: 'unknown error', httpStatus: 500 };
}
