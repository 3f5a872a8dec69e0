import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
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
  const body = JSON.stringify(ociErrorBody(coded));
  res.status(status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Docker-Distribution-API-Version', API_VERSION);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req?.method === 'HEAD' ? undefined : body);
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
