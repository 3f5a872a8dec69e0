import { Logger, type INestApplication, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { API_VERSION } from '@lading/contracts';
import { ladingConfigSchema, type LadingConfig } from '../config/lading.config';
import { OciExceptionFilter } from '../errors/oci-exception.filter';
import { startDebugListener, type DebugListener } from '../metrics/debug-server';
import { observeRequest } from '../metrics/http-metrics';
import { BoundedExpressAdapter, httpServerLimits, type HttpServerLimits } from './bounded-express.adapter';

/** How an app process listens. */
export interface HttpAppOptions {
  /** `host:port`; port 0 picks a free one. */
  addr: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Head size and timeouts (`httpServerLimits(config.http)`); the defaults of `http.*` when absent. */
  limits?: HttpServerLimits;
  /** `http.debug`: with an `addr`, the debug listener (metrics) starts with the app and stops with it. */
  debug?: LadingConfig['http']['debug'];
  /**
   * Runs once the app's providers exist and before any starts (`onModuleInit`, the relay's loop…)
   * or the server listens: to subscribe to the event bus before the first event, say.
   */
  beforeListen?: (app: INestApplication) => void | Promise<void>;
}

const LEVELS: Record<string, LogLevel[]> = {
  debug: ['debug', 'log', 'warn', 'error', 'fatal'],
  info: ['log', 'warn', 'error', 'fatal'],
  warn: ['warn', 'error', 'fatal'],
  error: ['error', 'fatal'],
  silent: [],
};

/**
 * Creates and starts a Nest app on Express with what every Lading process needs: request bodies
 * left as streams (no body parser: blobs stream through), a server bounded in head size and idle
 * time, the OCI error filter, the API version header on every response, and graceful shutdown
 * hooks.
 */
export async function startHttpApp(module: unknown, options: HttpAppOptions): Promise<INestApplication> {
  const limits = options.limits ?? httpServerLimits(ladingConfigSchema.parse({}).http);
  const app = await NestFactory.create(module as never, new BoundedExpressAdapter(limits), {
    bodyParser: false,
    abortOnError: false,
    logger: LEVELS[options.logLevel ?? 'info'],
  });
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
  app.use(requestObserver(options.logLevel === 'debug'));
  app.useGlobalFilters(new OciExceptionFilter());
  app.enableShutdownHooks();
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
    const close = app.close.bind(app);
    app.close = async () => {
      await close();
      await debug.close();
    };
  }
  Logger.log(`listening on ${await app.getUrl()}`, 'Lading');
  return app;
}

const debugListeners = new WeakMap<INestApplication, DebugListener>();

function startDebug(addr: string, debug: NonNullable<HttpAppOptions['debug']>): Promise<DebugListener> {
  const { host, port } = splitAddr(addr);
  return startDebugListener({ addr, prometheus: debug.prometheus }, host, port);
}

/** The URL of an app's debug listener (`http://host:port`, port 0 resolved), when it has one. */
export function debugListenerUrl(app: INestApplication): string | undefined {
  return debugListeners.get(app)?.url;
}

/**
 * Records every request's HTTP metrics and, with `accessLog`, writes one debug line per request
 * when it ends: `<method> <url> <status> <ms>ms`, the status `-` when the connection closed before
 * the answer was complete. Which process served what, for tracing a request through replicas (the
 * integration tests count requests per replica with it).
 */
function requestObserver(accessLog: boolean): (req: Request, res: Response, next: NextFunction) => void {
  const logger = new Logger('Access');
  return (req, res, next) => {
    observeRequest(req, res, (o) => {
      if (accessLog) logger.debug(`${o.method} ${o.url} ${o.status} ${Math.round(o.durationMs)}ms`);
    });
    next();
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
