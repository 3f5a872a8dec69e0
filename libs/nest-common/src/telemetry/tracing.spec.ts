import { serviceNameFor, tracingWanted } from './tracing';

describe('tracingWanted', () => {
  it.each<[string, NodeJS.ProcessEnv, boolean]>([
    ['nothing configured', {}, false],
    ['an OTLP endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true],
    ['a traces endpoint', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true],
    ['an empty endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, false],
    ['an exporter', { OTEL_TRACES_EXPORTER: 'console' }, true],
    ['exporter none, endpoint set', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318' }, false],
    ['exporters none and otlp', { OTEL_TRACES_EXPORTER: 'none,otlp' }, true],
    ['the SDK disabled', { OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    ['OTEL_SDK_DISABLED=false', { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' }, true],
    ['only a sampler', { OTEL_TRACES_SAMPLER: 'always_on' }, false],
  ])('%s → %s', (_, env, wanted) => {
    expect(tracingWanted(env)).toBe(wanted);
  });
});

describe('serviceNameFor', () => {
  it.each([
    [['serve'], 'lading'],
    [['serve', 'gateway'], 'lading-gateway'],
    [['serve', 'blob-upload'], 'lading-blob-upload'],
    [['gc', 'run'], 'lading-gc'],
    [[], 'lading'],
  ])('%j → %s', (argv, name) => {
    expect(serviceNameFor(argv)).toBe(name);
  });
});
