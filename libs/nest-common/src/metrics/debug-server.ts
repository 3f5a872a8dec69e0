import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { collectProcessMetrics, metricsRegistry } from './metrics';

/** Where the debug listener listens, and the `http.debug.prometheus` settings. */
export interface DebugListenerOptions {
  readonly host: string;
  /** 0 picks a free one. */
  readonly port: number;
  readonly prometheus: { readonly enabled: boolean; readonly path: string };
}

/** A started debug listener. */
export interface DebugListener {
  /** `http://host:port` as bound (port 0 resolved). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts the debug listener on its own address, as the reference registry's `http.debug` does:
 * `GET <prometheus.path>` answers the process's metrics in the Prometheus text format; every
 * other request is 404. A plain Node server with no Nest pipeline: a scrape never competes with
 * /v2 traffic for the app's middleware, and nothing of the public API is reachable from here.
 */
export async function startDebugListener(options: DebugListenerOptions): Promise<DebugListener> {
  collectProcessMetrics();
  const { enabled, path } = options.prometheus;
  const server: Server = createServer((req, res) => {
    const urlPath = (req.url ?? '/').split('?', 1)[0];
    if (!enabled || urlPath !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metricsRegistry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metricsRegistry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  Logger.log(`debug listener on ${url}${enabled ? ` (metrics at ${path})` : ''}`, 'Lading');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
