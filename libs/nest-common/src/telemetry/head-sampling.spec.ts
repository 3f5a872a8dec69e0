import type { IncomingMessage } from 'node:http';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { headSamplingFor, samplerRatio, unsampledTraceparent } from './head-sampling';

const request = (traceparent?: string) => ({ headers: traceparent === undefined ? {} : { traceparent } }) as unknown as IncomingMessage;
const SAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const UNSAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** A sequence of draws, repeated. */
function draws(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

const decide = (s: ReturnType<typeof headSamplingFor>, kind: SpanKind, traceId = TRACE_ID) =>
  s!.sampler.shouldSample(ROOT_CONTEXT, traceId, 'span', kind, {}, []).decision;

describe('samplerRatio', () => {
  it.each<[string | undefined, number]>([
    ['0.1', 0.1],
    [' 0 ', 0],
    ['1', 1],
    [undefined, 1],
    ['', 1],
    ['abc', 1],
    ['1.5', 1],
    ['-0.1', 1],
  ])('%j → %s', (arg, ratio) => {
    expect(samplerRatio({ OTEL_TRACES_SAMPLER_ARG: arg })).toBe(ratio);
  });
});

describe('headSamplingFor', () => {
  it('leaves traceidratio and samplers it does not know to the SDK', () => {
    expect(headSamplingFor({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toBeUndefined();
    expect(headSamplingFor({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toBeUndefined();
  });

  it('parentbased_traceidratio: a root is drawn at the door, and one drawn in is sampled at its server span whatever its trace id', () => {
    const s = headSamplingFor({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }, draws(0.05, 0.5))!;
    expect(s.skip(request())).toBe(false); // 0.05 < 0.1
    // This trace id is above the ratio's bound, so the SDK's ratio sampler alone would drop it.
    const high = 'ffffffff000000000000000000000000';
    expect(s.sampler.shouldSample(ROOT_CONTEXT, high, 'GET', SpanKind.SERVER, {}, []).decision).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    // Forced once: the next root is the configured sampler's again.
    expect(s.sampler.shouldSample(ROOT_CONTEXT, high, 'GET', SpanKind.SERVER, {}, []).decision).toBe(SamplingDecision.NOT_RECORD);
    expect(s.skip(request())).toBe(true); // 0.5 ≥ 0.1
  });

  it('parentbased_traceidratio: a draw in forces only a server span, and the next request resets it', () => {
    const s = headSamplingFor({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }, draws(0.05, 0.5))!;
    const high = 'ffffffff000000000000000000000000';
    expect(s.skip(request())).toBe(false);
    expect(decide(s, SpanKind.INTERNAL, high)).toBe(SamplingDecision.NOT_RECORD);
    expect(s.skip(request())).toBe(true);
    expect(decide(s, SpanKind.SERVER, high)).toBe(SamplingDecision.NOT_RECORD);
  });

  it('parent-based: a valid traceparent decides, whatever the draw', () => {
    const s = headSamplingFor({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, draws(0))!;
    expect(s.skip(request(SAMPLED))).toBe(false);
    expect(s.skip(request(UNSAMPLED))).toBe(true);
    expect(s.skip(request(SAMPLED.toUpperCase()))).toBe(false);
    // Not a valid one: a root, drawn (ratio 0: never).
    expect(s.skip(request('00-00000000000000000000000000000000-00f067aa0ba902b7-01'))).toBe(true);
    expect(s.skip(request('garbage'))).toBe(true);
  });

  it('the default parentbased_always_on skips only what an unsampled parent asks to', () => {
    const s = headSamplingFor({})!;
    expect(s.skip(request())).toBe(false);
    expect(s.skip(request(SAMPLED))).toBe(false);
    expect(s.skip(request(UNSAMPLED))).toBe(true);
    expect(decide(s, SpanKind.SERVER)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
  });

  it('always_off skips everything, always_on nothing, whatever the parent says', () => {
    const off = headSamplingFor({ OTEL_TRACES_SAMPLER: 'always_off' })!;
    expect([off.skip(request()), off.skip(request(SAMPLED))]).toEqual([true, true]);
    const on = headSamplingFor({ OTEL_TRACES_SAMPLER: 'always_on' })!;
    expect([on.skip(request()), on.skip(request(UNSAMPLED))]).toEqual([false, false]);
  });

  it('parentbased_always_off: roots skipped, a sampled parent followed', () => {
    const s = headSamplingFor({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })!;
    expect(s.skip(request())).toBe(true);
    expect(s.skip(request(SAMPLED))).toBe(false);
  });

  it('draws about the ratio over many roots', () => {
    let seed = 42;
    const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const s = headSamplingFor({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }, lcg)!;
    let traced = 0;
    for (let i = 0; i < 10_000; i++) if (!s.skip(request())) traced++;
    expect(traced).toBeGreaterThan(900);
    expect(traced).toBeLessThan(1100);
  });
});

describe('unsampledTraceparent', () => {
  it("keeps a client's ids with the sampled flag cleared", () => {
    expect(unsampledTraceparent(SAMPLED)).toBe(UNSAMPLED);
  });

  it('makes new valid, distinct ids otherwise', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const tp = unsampledTraceparent(null);
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      seen.add(tp);
    }
    expect(seen.size).toBe(500);
  });
});
