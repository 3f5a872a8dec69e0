/**
 * Head sampling at the door: whether an incoming HTTP request is traced is decided before any
 * instrumentation does work for it, so a request that is not sampled costs next to nothing.
 *
 * With the SDK's own sampling every request pays for its server span before the sampler is asked
 * (the HTTP instrumentation builds the span's attributes first), then for a non-recording span in
 * every instrumented layer, the context switches of each and the listeners bound to its context;
 * measured, that was most of what tracing cost at 10 % sampling. Here `traceServers` (tracing.ts)
 * asks {@link HeadSampling.skip} before the server span (server-span.ts) is made; one it skips
 * goes to the server untouched (no span, no context), marked with the `traceparent` it carries on
 * ({@link markDropped}), and every span below it needs a parent, so none is made.
 *
 * The decision is the configured sampler's, made the standard way (`OTEL_TRACES_SAMPLER`,
 * `OTEL_TRACES_SAMPLER_ARG`, as the SDK reads them), for the samplers it can be made from the
 * request alone:
 * - `parentbased_*` (the default is `parentbased_always_on`): a request with a valid
 *   `traceparent` follows its sampled flag; one without is a root, sampled by the root sampler
 *   (`always_on`, `always_off`, or the ratio, drawn here). A root drawn in is forced in at its
 *   server span ({@link HeadSampling.sampler} samples the next server span after a draw in),
 *   so the ratio is not applied twice.
 * - `always_off`: every request skipped. `always_on`: none.
 * - `traceidratio` (no parent), and any sampler the SDK does not build itself: nothing is decided
 *   here; the SDK's sampler decides as it would.
 * Every span that is not a request's server span (a relay batch, a GC cycle, a Kafka consumer's
 * span) is left to the configured sampler.
 *
 * A skipped request still carries the decision on: {@link unsampledTraceparent} gives the
 * `traceparent` (sampled flag 0) its scope and its forwarded requests carry, so a service behind
 * the gateway skips it too instead of drawing again, and its log lines name that trace.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Link, SpanKind, Attributes } from '@opentelemetry/api';
import type { Sampler, SamplingResult } from '@opentelemetry/sdk-trace-base';
import { isSampled, markUnsampled, parseTraceparent } from '@lading/contracts';

/** What the SDK gets and the server span (server-span.ts) asks. */
export interface HeadSampling {
  /** True: do not trace this request. */
  skip(req: IncomingMessage): boolean;
  /** The SDK's sampler: the configured one, except for a server span the door drew in. */
  sampler: Sampler;
}

/** A root's chance of being sampled, as `OTEL_TRACES_SAMPLER_ARG` gives it (the SDK's rules: 1 when blank or out of [0, 1]). */
export function samplerRatio(env: NodeJS.ProcessEnv): number {
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = raw ? Number(raw) : NaN;
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : 1;
}

/**
 * The door's sampling for `env`, or undefined when the configured sampler cannot be decided at
 * the door (`traceidratio`, or a sampler the SDK does not build itself): the SDK then decides
 * everything, from the same variables.
 */
export function headSamplingFor(env: NodeJS.ProcessEnv, random: () => number = Math.random): HeadSampling | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when tracing starts
  const base = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on';
  const ratio = samplerRatio(env);
  const roots: Record<string, { sampler: Sampler; draw: () => boolean } | undefined> = {
    always_on: { sampler: new base.AlwaysOnSampler(), draw: () => true },
    always_off: { sampler: new base.AlwaysOffSampler(), draw: () => false },
    traceidratio: { sampler: new base.TraceIdRatioBasedSampler(ratio), draw: () => ratio > 0 && random() < ratio },
  };
  const parentBased = name.startsWith('parentbased_');
  const root = roots[parentBased ? name.slice('parentbased_'.length) : name];
  if (!root || name === 'traceidratio') return undefined;
  const configured = parentBased ? new base.ParentBasedSampler({ root: root.sampler }) : root.sampler;

  let drawnIn = false;
  const sampler: Sampler = {
    shouldSample(ctx: Context, traceId: string, spanName: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
      // SpanKind.SERVER is 1; the server span starts synchronously right after skip() drew it in.
      if (drawnIn && kind === 1) {
        drawnIn = false;
        return { decision: base.SamplingDecision.RECORD_AND_SAMPLED };
      }
      return configured.shouldSample(ctx, traceId, spanName, kind, attributes, links);
    },
    toString: () => `LadingHeadSampler{${configured.toString()}}`,
  };
  return {
    sampler,
    skip(req) {
      drawnIn = false;
      if (parentBased) {
        const parent = incomingTraceparent(req);
        // A remote parent decides: sampled goes to the SDK (the parent-based sampler samples it).
        if (parent) return !isSampled(parent);
      }
      if (!root.draw()) return true;
      // always_on samples every span anyway: nothing to force.
      drawnIn = name.endsWith('traceidratio');
      return false;
    },
  };
}

/** The request's `traceparent`, when it has one valid one. */
export function incomingTraceparent(req: IncomingMessage): string | null {
  const value = req.headers.traceparent;
  return typeof value === 'string' ? parseTraceparent(value) : null;
}

/** Marks a request the door skipped with the {@link unsampledTraceparent} its scope carries on. */
export function markDropped(req: IncomingMessage): void {
  markUnsampled(req, unsampledTraceparent(incomingTraceparent(req)));
}

/**
 * The `traceparent` a request the door skipped carries on (its scope, its forwarded requests):
 * the client's, if it sent a valid one, with the sampled flag cleared; else new random ids with
 * the flag clear, so what follows it knows the decision and log lines can still be joined.
 */
export function unsampledTraceparent(clientTraceparent: string | null): string {
  if (clientTraceparent) return `${clientTraceparent.slice(0, -2)}00`;
  const ids = randomHex(24);
  return `00-${ids.slice(0, 32)}-${ids.slice(32)}-00`;
}

/** Random bytes for ids, drawn 4 KiB at a time: one `randomFillSync` per 170 requests, not one per request. */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += bytes;
  return pool.toString('hex', used - bytes, used);
}
