/**
 * Tracing, as every layer uses it: the one tracer, the registry's span attribute names, and the
 * W3C `traceparent` (what the request scope, the outbox rows and the Kafka headers carry) turned
 * into a context to continue and back. Only `@opentelemetry/api` here: with no SDK started (the
 * default) every call is one of its no-ops, and {@link tracingActive} lets a hot path skip even
 * that.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';
import type { V2Route } from './v2-route';
import type { RequestScope } from './request-scope';

type OtelCore = typeof import('@opentelemetry/core');
let core: OtelCore | undefined;

/**
 * `@opentelemetry/core` (RPC metadata, tracing suppression), loaded on first use: only a process
 * that traces needs it, and loading it takes about 0.1 s, which every command line would pay.
 */
export function otelCore(): OtelCore {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily, see above
  return (core ??= require('@opentelemetry/core') as OtelCore);
}

/** The instrumentation scope name of every span Lading makes itself. */
export const TRACER_NAME = 'lading';

/** Span attributes of the registry (beyond the OpenTelemetry semantic conventions). */
export const OciAttributes = {
  repository: 'oci.repository',
  /** A tag or digest, as the manifest route named it. */
  reference: 'oci.reference',
  digest: 'oci.digest',
  /** The operation of the route table (`manifest.put`…). */
  operation: 'oci.operation',
  /** The upload session every request of one chunked upload carries. */
  uploadSession: 'oci.upload.session_id',
  requestId: 'lading.request_id',
} as const;

// A provider nobody registered hands out the API's no-op provider: what `trace` returns until an SDK starts.
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** Whether an SDK registered a tracer provider (tracing is on); false by default. */
export function tracingActive(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Whether no span is to be made in `ctx`: no tracing SDK, tracing suppressed there, or no span
 * to hang one under. A request the sampler dropped at the door runs with no span at all (see
 * `head-sampling.ts` in nest-common), so every span Lading makes in a request's path (the
 * operation, the store and storage calls, the cache) tests this first and costs nothing then. A
 * root of its own (a relay batch) is never made here: those continue a `traceparent`.
 */
export function untraced(ctx: Context = context.active()): boolean {
  return !tracingActive() || trace.getSpan(ctx) === undefined || otelCore().isTracingSuppressed(ctx);
}

const UNSAMPLED = Symbol.for('lading.unsampled_traceparent');

/**
 * Marks an incoming request the sampler dropped at the door with the `traceparent` it carries on
 * (sampled flag 0): its scope takes it, so the services behind the gateway and its events know.
 */
export function markUnsampled(req: object, traceparent: string): void {
  (req as Record<symbol, string>)[UNSAMPLED] = traceparent;
}

/** The `traceparent` {@link markUnsampled} gave `req`, if the sampler dropped it. */
export function unsampledTraceparentOf(req: object): string | undefined {
  return (req as Record<symbol, string | undefined>)[UNSAMPLED];
}

const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Lading's tracer (a no-op one until an SDK starts). */
export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

const carrierGetter = {
  keys: (c: Record<string, string>) => Object.keys(c),
  get: (c: Record<string, string>, k: string) => c[k],
};

/** The context that continues `traceparent` (W3C), or `base` when there is none. */
export function contextOf(traceparent: string | null | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!traceparent) return base;
  return propagation.extract(base, { traceparent }, carrierGetter);
}

/** The span context `traceparent` names, for a link; undefined when there is none. */
export function spanContextOf(traceparent: string | null | undefined): SpanContext | undefined {
  const sc = traceparent ? trace.getSpanContext(contextOf(traceparent)) : undefined;
  return sc && trace.isSpanContextValid(sc) ? sc : undefined;
}

/** A link to the span `traceparent` names, as a list of zero or one, for `links:`. */
export function linksTo(traceparent: string | null | undefined, attributes?: Attributes): Link[] {
  const sc = spanContextOf(traceparent);
  return sc ? [{ context: sc, attributes }] : [];
}

/** The W3C `traceparent` of the span active in `ctx`; null when none is recording or valid. */
export function traceparentOf(ctx: Context = context.active()): string | null {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return null;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

/** Whether a (valid) `traceparent` has its sampled flag set. */
export function isSampled(traceparent: string): boolean {
  return (parseInt(traceparent.slice(-2), 16) & 1) === 1;
}

/** The trace id of a `traceparent`, or undefined. */
export function traceIdOf(traceparent: string | null | undefined): string | undefined {
  return traceparent ? traceparent.split('-')[1] : undefined;
}

/** The attributes every span of a /v2 request carries: operation, repository, and what its route names. */
export function requestAttributes(scope: RequestScope, route?: V2Route): Attributes {
  const a: Attributes = { [OciAttributes.operation]: scope.operation, [OciAttributes.requestId]: scope.requestId };
  if (scope.repository !== null) a[OciAttributes.repository] = scope.repository;
  if (route?.kind === 'manifest') a[OciAttributes.reference] = route.reference;
  if (route?.kind === 'blob' || route?.kind === 'referrers') a[OciAttributes.digest] = route.digest;
  if (route?.kind === 'upload') a[OciAttributes.uploadSession] = route.uploadId;
  return a;
}

/**
 * Runs `fn` in a new span `name` (a child of the active span, or of `parent` when given) and ends
 * it when `fn` settles; an error marks the span failed and is rethrown. With tracing off, or no
 * span to be a child of ({@link untraced}), this is `fn` itself, no span made.
 */
export async function withSpan<T>(
  name: string,
  options: { attributes?: Attributes; kind?: SpanKind; links?: Link[]; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  if (untraced(parent)) return fn(NO_SPAN);
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, links: options.links }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/**
 * The context to continue `traceparent` in: `ctx` itself when its active span is already in that
 * trace (a child of an instrumentation's span, say a Kafka `process` span), else the context of
 * `traceparent`; `ctx` when there is none.
 */
export function continuing(traceparent: string | null | undefined, ctx: Context = context.active()): Context {
  if (!traceparent) return ctx;
  const active = trace.getSpanContext(ctx);
  return active && active.traceId === traceIdOf(traceparent) ? ctx : contextOf(traceparent);
}

/** What {@link withSpansEach} makes of one item. */
export interface ItemSpan {
  attributes?: Attributes;
  links?: Link[];
}

/**
 * Runs `fn` once for a batch whose items each continue a trace of their own (outbox rows, Kafka
 * records, webhook deliveries): one span `name` per item that has a sampled `traceparent` (its
 * child; an item of a request the sampler dropped gets none, as a parent-based sampler would drop
 * it anyway), all ended when `fn` settles, failed if it throws. `fn` gets the traceparent each
 * item passes on (its span's, else its own) and runs with the first span active. Without tracing,
 * no spans: `fn` gets the items' own traceparents.
 */
export async function withSpansEach<T>(
  name: string,
  kind: SpanKind,
  traceparents: readonly (string | null)[],
  describe: (i: number) => ItemSpan,
  fn: (passOn: (string | null)[], spans: readonly (Span | undefined)[]) => Promise<T>,
): Promise<T> {
  if (!tracingActive()) return fn([...traceparents], []);
  const spans = traceparents.map((tp, i) => (tp && isSampled(tp) ? tracer().startSpan(name, { kind, ...describe(i) }, contextOf(tp)) : undefined));
  const passOn = spans.map((s, i) => (s ? traceparentOf(trace.setSpan(ROOT_CONTEXT, s)) : traceparents[i]));
  const first = spans.find((s) => s !== undefined);
  try {
    return await (first ? context.with(trace.setSpan(context.active(), first), () => fn(passOn, spans)) : fn(passOn, spans));
  } catch (e) {
    for (const s of spans) if (s) failSpan(s, e);
    throw e;
  } finally {
    for (const s of spans) s?.end();
  }
}

/** Marks `span` failed with `e` (its status, and an `exception` event). */
export function failSpan(span: Span, e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  span.setAttribute('error.type', err.constructor.name);
}

/** Links the active span to the span `traceparent` names; nothing when either is missing. */
export function linkActiveSpan(traceparent: string | null | undefined, attributes?: Attributes): void {
  const sc = spanContextOf(traceparent);
  if (sc) trace.getActiveSpan()?.addLink({ context: sc, attributes });
}

/** Sets attributes on the active span, if one is recording; nothing otherwise. */
export function annotateActiveSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}
