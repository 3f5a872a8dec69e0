import type { Server } from 'node:http';
import { Logger, ShutdownSignal, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import type { Logger as PinoLogger } from 'pino';
import { API_VERSION, Headers, unsampledTraceparentOf } from '@lading/contracts';
import { ladingConfigSchema, type LadingConfig } from '../config/lading.config';
import { OciExceptionFilter } from '../errors/oci-exception.filter';
import { createRootLogger, PinoNestLogger, requestIdOf, withRequestId } from '../logging/logging';
import { startDebugListener, type DebugListener } from '../metrics/debug-server';
import { observeRequest } from '../metrics/http-metrics';
import { shutdownTracing } from '../telemetry/tracing';
import { BoundedExpressAdapter, httpServerLimits, type HttpServerLimits } from './bounded-express.adapter';

/** How an app process listens. */
export interface HttpAppOptions {
  /** `host:port`; port 0 picks a free one. */
  addr: string;
  /** `log`: level, formatter and the access-log switch; the defaults of `log.*` for what is absent. */
  log?: {
    level?: LadingConfig['log']['level'];
    formatter?: LadingConfig['log']['formatter'];
    accesslog?: { disabled: boolean };
  };
  /** Head size and timeouts (`httpServerLimits(config.http)`); the defaults of `http.*` when absent. */
  limits?: HttpServerLimits;
  /**
   * A service behind the gateway (blob-upload, manifests): its requests' ids come from the request
   * scope the gateway signed. Otherwise (public processes) a scope header a client sent is ignored.
   */
  behindGateway?: boolean;
  /** `http.debug`: with an `addr`, the debug listener (metrics) starts with the app and stops with it. */
  debug?: LadingConfig['http']['debug'];
  /**
   * Runs once the app's providers exist and before any starts (`onModuleInit`, the relay's loop…)
   * or the server listens: to subscribe to the event bus before the first event, say.
   */
  beforeListen?: (app: INestApplication) => void | Promise<void>;
}

/**
 * Creates and starts a Nest app on Express with what every Lading process needs: request bodies
 * left as streams (no body parser: blobs stream through), a server bounded in head size and idle
 * time, the OCI error filter, the API version header on every response, and graceful shutdown
 * on a signal ({@link closeOnSignals}).
 */
export async function startHttpApp(module: unknown, options: HttpAppOptions): Promise<INestApplication> {
  const defaults = ladingConfigSchema.parse({});
  const limits = options.limits ?? httpServerLimits(defaults.http);
  const log = { ...defaults.log, ...options.log };
  const logger = createRootLogger(log);
  const app = await NestFactory.create(module as never, new BoundedExpressAdapter(limits), {
    bodyParser: false,
    abortOnError: false,
    bufferLogs: true,
  });
  app.useLogger(new PinoNestLogger(logger));
  const express = app.getHttpAdapter().getInstance();
  express.disable('x-powered-by');
  express.set('etag', false);
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Docker-Distribution-API-Version', API_VERSION);
    // Express refuses a path with a malformed %-escape (400 "Failed to decode param") before any
    // route runs. Routing sees it escaped; the handlers read `originalUrl`, untouched, and judge
    // the reference or name themselves (an undecodable tag is MANIFEST_UNKNOWN, a name NAME_INVALID).
    if (req.url.includes('%')) req.url = req.url.replace(/%(?![0-9a-fA-F]{2})/g, '%25');
    next();
  });
  app.use(requestObserver(log.accesslog.disabled ? undefined : logger, options.behindGateway ?? false));
  app.useGlobalFilters(new OciExceptionFilter());
  closeOnSignals(app);
  await options.beforeListen?.(app);
  const { host, port } = splitAddr(options.addr);
  const debug = options.debug?.addr ? await startDebug(options.debug.addr, options.debug) : undefined;
  try {
    await app.listen(port, host);
  } catch (e) {
    await debug?.close();
    throw e;
  }
  if (debug) {
    debugListeners.set(app, debug);
    // Closes with the app's server. (Not by replacing `app.close`: Nest hands out a proxy of the
    // app whose `close` is not the one an assignment replaces, so the listener stayed open and
    // kept the process alive after `app.close()`.)
    (app.getHttpServer() as Server).once('close', () => void debug.close());
  }
  Logger.log(`listening on ${await app.getUrl()}`, 'Lading');
  return app;
}

/**
 * On a shutdown signal (those of Nest's `enableShutdownHooks`: SIGTERM, SIGINT…) closes the app
 * (its hooks, its server), then exports the spans still buffered (bounded: {@link shutdownTracing}),
 * then dies of that signal, as without a handler. Nest's own hooks cannot order this: they end by
 * re-raising the signal, which kills the process before an export could finish, and the last
 * requests' spans were lost. The handlers go when the app closes otherwise.
 */
function closeOnSignals(app: INestApplication): void {
  const signals = Object.values(ShutdownSignal);
  let closing = false;
  const onSignal = async (signal: NodeJS.Signals) => {
    if (closing) return; // a second signal while closing changes nothing
    closing = true;
    let failed = false;
    try {
      await app.close();
    } catch (e) {
      Logger.error(`closing on ${signal} failed: ${e instanceof Error ? e.stack : e}`, 'Lading');
      failed = true;
    }
    await shutdownTracing();
    unlisten();
    if (failed) process.exit(1);
    process.kill(process.pid, signal);
  };
  const unlisten = () => signals.forEach((s) => process.removeListener(s, onSignal));
  signals.forEach((s) => process.on(s, onSignal));
  (app.getHttpServer() as Server).once('close', () => closing || unlisten());
}

const debugListeners = new WeakMap<INestApplication, DebugListener>();

function startDebug(addr: string, debug: NonNullable<HttpAppOptions['debug']>): Promise<DebugListener> {
  const { host, port } = splitAddr(addr);
  return startDebugListener({ host, port, prometheus: debug.prometheus });
}

/** The URL of an app's debug listener (`http://host:port`, port 0 resolved), when it has one. */
export function debugListenerUrl(app: INestApplication): string | undefined {
  return debugListeners.get(app)?.url;
}

/**
 * Gives every request its id (`X-Request-Id`, which the gateway's request scope and every log line
 * of the request then carry), records its HTTP metrics and, with `accessLog`, writes one `info`
 * line when it ends: method, URL, operation, status (`-` when the connection closed before the
 * answer was complete), bytes in and out, duration. Which process served what, for tracing a
 * request through replicas (the integration tests count requests per replica with it).
 */
function requestObserver(accessLog: PinoLogger | undefined, behindGateway: boolean): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const id = requestIdOf(req, behindGateway);
    req.headers[Headers.requestId] = id;
    observeRequest(req, res, (o) => {
      if (!accessLog) return;
      const line = {
        context: 'Access',
        request_id: id,
        method: o.method,
        url: o.url,
        operation: o.handler,
        status: o.status,
        bytes_in: o.bytesIn,
        bytes_out: o.bytesOut,
        duration_ms: Math.round(o.durationMs),
      };
      accessLog.info(line, `${o.method} ${o.url} ${o.status} ${line.duration_ms}ms`);
    });
    withRequestId(id, next, unsampledTraceparentOf(req));
  };
}

/** Splits `host:port` (IPv6 in brackets). */
export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(addr.slice(i + 1)) };
}

/**
 * Runs an app's `main` when its file is the process's entry point (`node main.js`), printing the
 * error and exiting 1 if it fails; does nothing when the file is imported (the lading CLI).
 */
export function runIfEntryPoint(entry: NodeJS.Module, main: () => Promise<void>): void {
  if (require.main !== entry) return;
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
