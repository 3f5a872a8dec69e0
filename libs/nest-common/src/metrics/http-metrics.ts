import type { Request, Response } from 'express';
import { Counter, Gauge, Histogram } from 'prom-client';
import { parseV2Path, resolveOperation } from '@lading/contracts';
import { BYTES_BUCKETS, SECONDS_BUCKETS } from './metrics';

// The reference registry's HTTP metrics (namespace `registry`, subsystem `http`), `handler` being
// the route: here the operation of the route table (`manifest.get`, `upload.append`…).
const requests = new Counter({
  name: 'registry_http_requests_total',
  help: 'HTTP requests served, by operation, method and status code ("aborted": the connection closed first).',
  labelNames: ['handler', 'method', 'code'] as const,
});
const duration = new Histogram({
  name: 'registry_http_request_duration_seconds',
  help: 'Time from the request head to the last byte of the response, by operation and method.',
  labelNames: ['handler', 'method'] as const,
  buckets: SECONDS_BUCKETS,
});
const requestSize = new Histogram({
  name: 'registry_http_request_size_bytes',
  help: 'Request bytes read from the connection (head and body), by operation.',
  labelNames: ['handler'] as const,
  buckets: BYTES_BUCKETS,
});
const responseSize = new Histogram({
  name: 'registry_http_response_size_bytes',
  help: 'Response bytes written to the connection (head and body), by operation.',
  labelNames: ['handler'] as const,
  buckets: BYTES_BUCKETS,
});
const inFlight = new Gauge({
  name: 'registry_http_in_flight_requests',
  help: 'Requests being served, by operation.',
  labelNames: ['handler'] as const,
});

/**
 * The `handler` label of a request: its /v2 operation, `v2.unknown` for a /v2 path or method the
 * table does not have, `health` and `admin` for those endpoints, `other` for anything else. A
 * bounded set, whatever the path.
 */
export function handlerOf(method: string, url: string): string {
  const path = url.split('?', 1)[0];
  if (path === '/v2' || path.startsWith('/v2/')) {
    const route = parseV2Path(path);
    return (route && resolveOperation(route, method)?.name) ?? 'v2.unknown';
  }
  if (path.startsWith('/healthz/') || path === '/healthz') return 'health';
  if (path.startsWith('/admin/')) return 'admin';
  return 'other';
}

/** What one request came to, once its connection is done with it. */
export interface RequestOutcome {
  readonly method: string;
  /** The original URL (path and query). */
  readonly url: string;
  readonly handler: string;
  /** The status code, or `-` when the connection closed before the response was complete. */
  readonly status: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
}

/** How far each connection's byte counters were when its previous request ended. */
const connectionMarks = new WeakMap<object, { read: number; written: number }>();

/**
 * Watches one request: counts it in flight now and calls `done` with its outcome when the
 * response closes, after recording the HTTP metrics. Bytes are what the connection read and wrote
 * since its previous request ended (head and body; no listener on the body, which the handlers
 * stream): a body that arrived with its head, before any middleware ran, counts too.
 */
export function observeRequest(req: Request, res: Response, done: (outcome: RequestOutcome) => void): void {
  const started = performance.now();
  const socket = req.socket;
  const handler = handlerOf(req.method, req.originalUrl);
  inFlight.inc({ handler });
  res.once('close', () => {
    inFlight.dec({ handler });
    const status = res.writableFinished ? String(res.statusCode) : '-';
    const seconds = (performance.now() - started) / 1000;
    const mark = connectionMarks.get(socket) ?? { read: 0, written: 0 };
    const bytesIn = socket.bytesRead - mark.read;
    const bytesOut = socket.bytesWritten - mark.written;
    connectionMarks.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
    requests.inc({ handler, method: req.method, code: status === '-' ? 'aborted' : status });
    duration.observe({ handler, method: req.method }, seconds);
    requestSize.observe({ handler }, bytesIn);
    responseSize.observe({ handler }, bytesOut);
    done({ method: req.method, url: req.originalUrl, handler, status, bytesIn, bytesOut, durationMs: seconds * 1000 });
  });
}
