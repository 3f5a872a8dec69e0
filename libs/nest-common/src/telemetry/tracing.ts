/**
 * Starts the OpenTelemetry SDK for a Lading process, configured the standard way: the `OTEL_*`
 * variables of the SDK specification (exporter, endpoint, protocol, sampler, propagators, service
 * name, resource attributes, batch settings), read by the SDK itself, as Distribution 3 does.
 *
 * Off unless asked for: with no exporter endpoint and no `OTEL_TRACES_EXPORTER` set, nothing is
 * loaded and no SDK starts, so every tracing call in the code stays an API no-op. It must run
 * before anything it instruments is first required (`scripts/lading.js` calls it first), since the
 * instrumentations patch modules as they load. This file imports nothing at its top for that reason.
 */

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

/** Probes and scrapes: not requests anyone traces. */
const UNTRACED_PATHS = /^\/(healthz|metrics)(\/|$|\?)/;

/**
 * Starts tracing when `env` asks for it ({@link tracingWanted}); resolves to undefined, having
 * loaded nothing, when it does not. Instruments HTTP (server and client), Express and Nest, `pg`,
 * kafkajs and undici (`fetch`). Spans of the database and HTTP clients are made only under a
 * parent (a request, a relay batch): a poll loop's queries make no traces of their own; taking a
 * pooled connection is not a span.
 */
export async function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracingWanted(env)) return undefined;
  const [{ NodeSDK }, http, express, nest, pg, kafkajs, undici] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-nestjs-core'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-kafkajs'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  const named = env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const sdk = new NodeSDK({
    serviceName: named ? undefined : serviceName,
    // Metrics are prom-client's (/metrics) and logs go to stdout: this SDK exports traces only.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new http.HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? ''),
        requireParentforOutgoingSpans: true,
      }),
      // Middleware layers would add a span per middleware per request; the handlers are enough.
      new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] }),
      new nest.NestInstrumentation(),
      new pg.PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new kafkajs.KafkaJsInstrumentation(),
      new undici.UndiciInstrumentation({ requireParentforSpans: true }),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
