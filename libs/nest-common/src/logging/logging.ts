import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import type { DynamicModule } from '@nestjs/common';
import { pino, stdTimeFunctions, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';
import { activeTraceIds, decodeRequestScope, Headers } from '@lading/contracts';
import type { LadingConfig } from '../config/lading.config';

/** How a process logs: `log.level` and `log.formatter`. */
export type LogSettings = Pick<LadingConfig['log'], 'level' | 'formatter'>;

/** The ids of the active OpenTelemetry span (or of the unsampled request being served), on every line logged while there is one (none without a tracing SDK). */
function traceFields(): Record<string, string> {
  const ids = activeTraceIds();
  return ids ? { trace_id: ids.traceId, span_id: ids.spanId } : {};
}

/**
 * The process's root pino logger: JSON lines (`level` as a word, ISO `time`, `trace_id` and
 * `span_id` while a span is active) for a collector, or pino-pretty's coloured lines when
 * `formatter` is `text`, or `auto` and standard output is a terminal. Written synchronously, so
 * lines keep their order and none is lost at exit.
 */
export function createRootLogger(settings: LogSettings, destination?: NodeJS.WritableStream): PinoLogger {
  const options = {
    level: settings.level,
    mixin: traceFields,
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
 * nestjs-pino over `logger`: Nest's `Logger` writes through it, and every line logged while a
 * request is served carries `request_id` (the `X-Request-Id` header, which the request observer
 * has set by then). pino-http's own per-request line is off: the request observer writes the
 * access line.
 */
export function loggingModule(logger: PinoLogger): DynamicModule {
  return LoggerModule.forRoot({
    pinoHttp: {
      logger,
      autoLogging: false,
      quietReqLogger: true,
      customAttributeKeys: { reqId: 'request_id' },
      genReqId: (req) => String(req.headers[Headers.requestId] ?? ''),
    },
  });
}
