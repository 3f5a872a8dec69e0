/**
 * Starts the OpenTelemetry SDK for a Lading process, configured the standard way: the `OTEL_*`
 * variables of the SDK specification (exporter, endpoint, protocol, sampler, propagators, service
 * name, resource attributes, batch settings), read by the SDK itself, as Distribution 3 does.
 *
 * Off unless asked for: with no exporter endpoint and no `OTEL_TRACES_EXPORTER` set, nothing is
 * loaded and no SDK starts, so every tracing call in the code stays an API no-op. It must run
 * before anything it instruments is first required (`scripts/lading.js` calls it first, the apps'
 * own entry points import `./start-tracing` first), since the instrumentations patch modules as
 * they load: so it starts synchronously, and this file imports nothing at its top.
 *
 * Spans are exported in batches (every `OTEL_BSP_SCHEDULE_DELAY`, 5 s by default), so a process
 * must call {@link shutdownTracing} once its app has closed, or the last requests' spans are lost.
 */

import type { IncomingMessage } from 'node:http';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { HeadSampling } from './head-sampling';

/** One of the SDK's instrumentations. */
type Instrumentation = NonNullable<NonNullable<ConstructorParameters<typeof NodeSDK>[0]>['instrumentations']>[number];

/** The variables that turn tracing on, as the SDK specification names them. */
const TRIGGERS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_TRACES_EXPORTER'] as const;

/** What a started SDK gives back. */
export interface Tracing {
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Whether `env` asks for tracing: an OTLP endpoint or a traces exporter other than `none` is set,
 * and `OTEL_SDK_DISABLED` is not `true`.
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) ?? [];
  if (exporters.length > 0) return exporters.some((e) => e !== 'none');
  return TRIGGERS.some((k) => (env[k] ?? '').trim() !== '');
}

/**
 * The service name of a `lading` command line: `lading-<app>` for `serve <app>`, `lading` for the
 * embedded `serve`, `lading-<command>` for the others. `OTEL_SERVICE_NAME` overrides it.
 */
export function serviceNameFor(argv: readonly string[]): string {
  const [command, app] = argv;
  if (command === 'serve') return app ? `lading-${app}` : 'lading';
  return command ? `lading-${command}` : 'lading';
}

/**
 * The service name of a process whose entry point is the file `entry`, run with `argv`: for an
 * app's own `apps/<app>/src/main.js` (or `.ts`) `lading-<app>`, for the command line's
 * (`apps/lading/src/main.js`) {@link serviceNameFor} `argv`; undefined for any other file.
 */
export function serviceNameOfEntry(entry: string | undefined, argv: readonly string[]): string | undefined {
  const app = /(?:^|[/\\])apps[/\\]([a-z][a-z0-9-]*)[/\\]src[/\\]main\.[jt]s$/.exec(entry ?? '')?.[1];
  if (!app) return undefined;
  return app === 'lading' ? serviceNameFor(argv) : `lading-${app}`;
}

/** The SDK this process started, once started. */
let started: { sdk: { shutdown(): Promise<void>; forceFlush?(): Promise<void> }; ready: Promise<void>; stopped?: Promise<void> } | undefined;

/** What {@link settleResource} reads of the SDK: the resource it made (not a public field of NodeSDK). */
interface SdkWithResource {
  _resource?: { asyncAttributesPending?: boolean; waitForAsyncAttributes?(): Promise<void> };
}

/**
 * Settles the resource's asynchronous attributes (the host detector's `host.id`, read from a file)
 * now, once. Left pending, the batch processor settles them at its first export by calling
 * `waitForAsyncAttributes` once per span of the batch — up to 2,048 calls, each awaiting every
 * attribute — inside the first requests' time (bench/tracing saw it as the top tracing function of
 * a 10 s run at 10 % sampling). Never rejects.
 */
function settleResource(sdk: object): Promise<void> {
  const resource = (sdk as SdkWithResource)._resource;
  if (!resource?.asyncAttributesPending || !resource.waitForAsyncAttributes) return Promise.resolve();
  return resource.waitForAsyncAttributes().catch(() => undefined);
}

/**
 * Resolves once the tracing this process started has its resource settled (see
 * {@link settleResource}); at once when tracing is off. For tests and for a caller that wants the
 * first spans exported without waiting on the resource.
 */
export function tracingReady(): Promise<void> {
  return started?.ready ?? Promise.resolve();
}

/**
 * Starts tracing when `env` asks for it ({@link tracingWanted}); returns undefined, having
 * loaded nothing, when it does not. Once started, a second call returns the same SDK (an app's
 * entry point imported by the `lading` command line, which started it already). Instruments HTTP
 * (server and client), `pg`, kafkajs and undici (`fetch`), and Express and Nest when asked for
 * ({@link instrumentationsFor}); the sampler decides at the door ({@link headSamplingFor}). Spans of the database and HTTP clients are made only under a
 * parent (a request, a relay batch): a poll loop's queries make no traces of their own; taking a
 * pooled connection is not a span.
 */
export function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (started) return handle;
  if (!tracingWanted(env)) return undefined;
  // require, not import(): the instrumentations must be in place before the caller's next require.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { headSamplingFor } = require('./head-sampling') as typeof import('./head-sampling');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const door = headSamplingFor(env);
  const instrumentations = instrumentationsFor(env);
  const named = env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const sdk = new NodeSDK({
    serviceName: named ? undefined : serviceName,
    // Undefined: the SDK builds the sampler from the same variables (one the door cannot decide).
    sampler: door?.sampler,
    // Metrics are prom-client's (/metrics) and logs go to stdout: this SDK exports traces only.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: instrumentations.map((name) => INSTRUMENTATIONS[name]()),
  });
  sdk.start();
  if (instrumentations.includes('http')) traceServers(door);
  started = { sdk, ready: settleResource(sdk) };
  // A process that ends by itself (a command, an app closed by its caller) exports what is left.
  process.once('beforeExit', () => void shutdownTracing(env));
  return handle;
}

/**
 * Puts Lading's own HTTP server span in front of `http.Server#emit` (server-span.ts), with the
 * sampling decision at its door: a request the sampler drops (or a probe) goes straight to the
 * server's own `emit`, so nothing of tracing runs for it — no server span, no context — and it is
 * only marked with the `traceparent` (sampled flag 0) it carries on. Every span Lading makes needs
 * a parent (`untraced`), and the database and HTTP clients' instrumentations are set up to need
 * one too, so nothing below such a request makes a span. Without a door (a sampler it cannot
 * decide for) every request gets a server span, and the SDK's sampler decides whether it records.
 */
function traceServers(door: HeadSampling | undefined): void {
  /* eslint-disable @typescript-eslint/no-require-imports -- after the SDK started, so `http` is the instrumented module */
  const http = require('http') as typeof import('node:http');
  const { markDropped } = require('./head-sampling') as typeof import('./head-sampling');
  const { traceIncomingRequests } = require('./server-span') as typeof import('./server-span');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const drop = door
    ? (req: IncomingMessage) => {
        if (!door.skip(req)) return false;
        markDropped(req);
        return true;
      }
    : undefined;
  traceIncomingRequests(http, drop);
}

/* eslint-disable @typescript-eslint/no-require-imports -- each loaded only when enabled, before what it patches */
/** The instrumentations Lading can run, by the names `OTEL_NODE_ENABLED_INSTRUMENTATIONS` uses. */
const INSTRUMENTATIONS = {
  http: () => {
    const http = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
    // The outgoing side only: the server spans are Lading's own (traceServers, server-span.ts).
    return new http.HttpInstrumentation({ disableIncomingRequestInstrumentation: true, requireParentforOutgoingSpans: true });
  },
  pg: () => {
    const pg = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
    return new pg.PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true });
  },
  kafkajs: () => {
    const kafkajs = require('@opentelemetry/instrumentation-kafkajs') as typeof import('@opentelemetry/instrumentation-kafkajs');
    return new kafkajs.KafkaJsInstrumentation();
  },
  undici: () => {
    const undici = require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici');
    return new undici.UndiciInstrumentation({ requireParentforSpans: true });
  },
  express: () => {
    const express = require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express');
    // Middleware layers would add a span per middleware per request; the handlers are enough.
    return new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] });
  },
  'nestjs-core': () => {
    const nest = require('@opentelemetry/instrumentation-nestjs-core') as typeof import('@opentelemetry/instrumentation-nestjs-core');
    return new nest.NestInstrumentation();
  },
} satisfies Record<string, () => Instrumentation>;
/* eslint-enable @typescript-eslint/no-require-imports */

export type InstrumentationName = keyof typeof INSTRUMENTATIONS;

/**
 * What runs unless told otherwise. Express and Nest are left out: their spans (three `request
 * handler`s and two Nest ones per request) repeat what the HTTP server span (its route, from the
 * route table) and Lading's operation span already say, and they cost on every request, sampled or
 * not, even when the request runs with tracing suppressed (bench/tracing).
 */
export const DEFAULT_INSTRUMENTATIONS: readonly InstrumentationName[] = ['http', 'pg', 'kafkajs', 'undici'];

/**
 * The instrumentations `env` asks for, as the OpenTelemetry Node auto-instrumentations read it:
 * `OTEL_NODE_ENABLED_INSTRUMENTATIONS` (comma-separated names without the
 * `@opentelemetry/instrumentation-` prefix: `http,express,nestjs-core`…) replaces the default
 * set, then `OTEL_NODE_DISABLED_INSTRUMENTATIONS` takes names out. Names Lading has no
 * instrumentation for are ignored.
 */
export function instrumentationsFor(env: NodeJS.ProcessEnv): InstrumentationName[] {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const known = (n: string): n is InstrumentationName => Object.prototype.hasOwnProperty.call(INSTRUMENTATIONS, n);
  const enabled = env.OTEL_NODE_ENABLED_INSTRUMENTATIONS?.trim() ? list(env.OTEL_NODE_ENABLED_INSTRUMENTATIONS).filter(known) : [...DEFAULT_INSTRUMENTATIONS];
  const disabled = new Set(list(env.OTEL_NODE_DISABLED_INSTRUMENTATIONS));
  return [...new Set(enabled)].filter((n) => !disabled.has(n));
}

const handle: Tracing = { shutdown: () => shutdownTracing() };

/**
 * How long {@link shutdownTracing} waits for the last export: `OTEL_BSP_EXPORT_TIMEOUT`
 * (milliseconds, the batch processor's own bound on one export), 30 s as the specification's
 * default when unset or not a number.
 */
export function tracingShutdownTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.OTEL_BSP_EXPORT_TIMEOUT);
  return Number.isFinite(ms) && ms > 0 ? ms : 30_000;
}

/**
 * Exports the spans still buffered and stops the SDK, waiting at most
 * {@link tracingShutdownTimeoutMs}; never rejects (a collector that is down must not hold a
 * shutdown up, nor fail it). Call it after the app has closed, so its last spans are ended.
 * Once is enough: later calls wait for the same end. Resolves at once when tracing is off.
 */
export function shutdownTracing(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!started) return Promise.resolve();
  if (!started.stopped) {
    const sdk = started.sdk;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((ok) => (timer = setTimeout(ok, tracingShutdownTimeoutMs(env)).unref()));
    started.stopped = Promise.race([sdk.shutdown().catch(() => undefined), bound]).finally(() => clearTimeout(timer));
  }
  return started.stopped;
}
