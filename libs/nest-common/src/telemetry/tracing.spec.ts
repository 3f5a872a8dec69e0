import { instrumentationsFor, serviceNameFor, serviceNameOfEntry, tracingShutdownTimeoutMs, tracingWanted } from './tracing';

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

describe('serviceNameOfEntry', () => {
  it.each<[string | undefined, string[], string | undefined]>([
    ['/srv/lading/dist/apps/gateway/src/main.js', [], 'lading-gateway'],
    ['/srv/lading/dist/apps/blob-upload/src/main.js', [], 'lading-blob-upload'],
    ['/srv/lading/apps/gc-worker/src/main.ts', [], 'lading-gc-worker'],
    ['/srv/lading/dist/apps/lading/src/main.js', ['serve', 'manifests'], 'lading-manifests'],
    ['/srv/lading/dist/apps/lading/src/main.js', ['gc', 'run'], 'lading-gc'],
    ['/srv/lading/scripts/lading.js', ['serve'], undefined],
    ['/srv/lading/dist/apps/gateway/src/gateway.module.js', [], undefined],
    ['/srv/lading/node_modules/jest/bin/jest.js', [], undefined],
    [undefined, [], undefined],
  ])('%s %j → %s', (entry, argv, name) => {
    expect(serviceNameOfEntry(entry, argv)).toBe(name);
  });
});

describe('tracingShutdownTimeoutMs', () => {
  it.each<[NodeJS.ProcessEnv, number]>([
    [{}, 30_000],
    [{ OTEL_BSP_EXPORT_TIMEOUT: '2000' }, 2000],
    [{ OTEL_BSP_EXPORT_TIMEOUT: 'soon' }, 30_000],
    [{ OTEL_BSP_EXPORT_TIMEOUT: '0' }, 30_000],
  ])('%j → %d ms', (env, ms) => {
    expect(tracingShutdownTimeoutMs(env)).toBe(ms);
  });
});

describe('instrumentationsFor', () => {
  it.each<[string, NodeJS.ProcessEnv, string[]]>([
    ['the default: no Express nor Nest', {}, ['http', 'pg', 'kafkajs', 'undici']],
    ['enabled replaces the default', { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http, express,nestjs-core' }, ['http', 'express', 'nestjs-core']],
    ['unknown names are ignored', { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,fs,mongodb,http' }, ['http']],
    ['disabled takes out of the default', { OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'pg,undici' }, ['http', 'kafkajs']],
    ['disabled takes out of enabled', { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,express', OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'express' }, ['http']],
    ['a blank enabled list is the default', { OTEL_NODE_ENABLED_INSTRUMENTATIONS: ' ' }, ['http', 'pg', 'kafkajs', 'undici']],
  ])('%s', (_, env, names) => {
    expect(instrumentationsFor(env)).toEqual(names);
  });
});
