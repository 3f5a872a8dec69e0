import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import { pino, stdTimeFunctions, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';
import { trace } from '@opentelemetry/api';
import { decodeRequestScope, Headers } from '@lading/contracts';
import type { LadingConfig } from '../config/lading.config';

/** How a process logs: `log.level` and `log.formatter`. */
export type LogSettings = Pick<LadingConfig['log'], 'level' | 'formatter'>;

/** The request being served, for the lines logged while it is (see {@link withRequestId}). */
interface ServedRequest {
  id: string;
  /** The `traceparent` it carries on when the sampler dropped it (it has no span to name the trace). */
  unsampled?: string;
}

const requests = new AsyncLocalStorage<ServedRequest>();

/**
 * Runs `fn` (the rest of a request's handling) so that every line logged in it, synchronously or
 * in what it awaits, carries `request_id: id`, and, when the sampler dropped the request, the
 * trace ids of the `unsampled` traceparent it carries on.
 */
export function withRequestId<T>(id: string, fn: () => T, unsampled?: string): T {
  return requests.run({ id, unsampled }, fn);
}

/**
 * What every line gets besides its own fields: the id of the request being served, and the ids
 * of the active OpenTelemetry span, or those an unsampled request carries on (none without a
 * tracing SDK). A new object each time: pino
 * merges the line's own fields into it.
 */
function contextFields(): Record<string, string> {
  const served = requests.getStore();
  const requestId = served?.id;
  // The active span's ids, or those an unsampled request carries on (it has no span).
  const ctx = trace.getActiveSpan()?.spanContext() ?? (served?.unsampled ? idsOf(served.unsampled) : undefined);
  if (ctx)
    return requestId
      ? { request_id: requestId, trace_id: ctx.traceId, span_id: ctx.spanId }
      : { trace_id: ctx.traceId, span_id: ctx.spanId };
  return requestId ? { request_id: requestId } : {};
}

/** The trace and span ids of a (valid) `traceparent`. */
function idsOf(traceparent: string): { traceId: string; spanId: string } {
  return { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52) };
}

/**
 * The process's root pino logger: JSON lines (`level` as a word, ISO `time`, `request_id` while a
 * request is served, `trace_id` and `span_id` while a span is active) for a collector, or pino-pretty's coloured lines when
 * `formatter` is `text`, or `auto` and standard output is a terminal. Written synchronously, so
 * lines keep their order and none is lost at exit.
 */
export function createRootLogger(settings: LogSettings, destination?: NodeJS.WritableStream): PinoLogger {
  const options = {
    level: settings.level,
    mixin: contextFields,
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const text = settings.formatter === 'text' || (settings.formatter === 'auto' && process.stdout.isTTY === true);
  if (text) {
    const pretty = {
      colorize: destination === undefined,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
      sync: true,
    };
    return pino(options, pinoPretty(destination ? { ...pretty, destination } : pretty));
  }
  return destination ? pino(options, destination) : pino(options);
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The id of a request, decided once when it arrives: in a service behind the gateway
 * (`fromScope`), the one of the request scope the gateway forwarded (so a service's lines carry
 * the gateway's id); else the client's `X-Request-Id` if it is sane, else a new uuid. A public
 * process (the gateway, the embedded registry) never reads a scope header: a client may send one,
 * forged, and the gateway replaces it.
 */
export function requestIdOf(req: IncomingMessage, fromScope = false): string {
  const scope = fromScope ? req.headers[Headers.internalScope] : undefined;
  if (typeof scope === 'string') {
    try {
      const { requestId } = decodeRequestScope(scope);
      if (REQUEST_ID.test(requestId)) return requestId;
    } catch {
      // Not a scope: the service refuses the request; its lines get an id of their own.
    }
  }
  const sent = req.headers[Headers.requestId];
  return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
}

/**
 * Nest's logger over pino `logger` (`app.useLogger`): `Logger.log(message, context)` becomes an
 * `info` line `{ context, msg }`, an `Error` or an object as the message is logged as `err` or as
 * fields, and Nest's exception handlers' `error(message, stack)` as an `err` with that stack (the
 * mapping nestjs-pino made, without its per-request child logger: the request id comes from
 * {@link withRequestId}).
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: PinoLogger) {}

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal',
    message: unknown,
    params: unknown[],
  ): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    // Nest passes the context last.
    const rest = params.length > 0 ? params.slice(0, -1) : params;
    if (params.length > 0) fields.context = params[params.length - 1];
    if (typeof message === 'object' && message !== null) {
      if (message instanceof Error) fields.err = message;
      else Object.assign(fields, message);
      this.logger[level](fields, ...(rest as []));
    } else if (
      level === 'error' &&
      typeof message === 'string' &&
      rest.length === 1 &&
      typeof rest[0] === 'string' &&
      /\n\s*at /.test(rest[0])
    ) {
      const err = new Error(message);
      err.stack = rest[0];
      fields.err = err;
      this.logger[level](fields);
    } else {
      this.logger[level](fields, message as string, ...(rest as []));
    }
  }
}
