import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { eventually, randomImage, RegistryTestClient } from '@lading/testing';
import { sharedKafkaBrokers, uniqueTopic } from '../support/kafka';
import { freePort, planSplit, startLading, type LadingProcess } from '../support/registry-processes';
import { WebhookReceiver } from '../support/webhook-receiver';

const ROOT = resolve(__dirname, '../..');
const DASHBOARD = join(ROOT, 'observability/grafana/dashboards/lading.json');
const ALERTS = join(ROOT, 'observability/prometheus/alerts.yml');

function promtool(): string {
  const bin = process.env.PROMTOOL;
  if (!bin)
    throw new Error(
      'PROMTOOL is not set: eval "$(bash scripts/services env)" after `scripts/services install promtool`',
    );
  return bin;
}

/** PromQL's words that are not metric names. */
const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'le',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression (or a Grafana `label_values(metric, label)` query) reads:
 * the identifiers left once strings, label matchers, grouping clauses, ranges, Grafana variables
 * and function calls are taken out.
 */
function metricNamesOf(expr: string): string[] {
  const lv = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,/.exec(expr.trim());
  if (lv) return [lv[1]];
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][\w:]*)\s*(\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names];
}

/** The names a scrape exposes: each `# TYPE`d metric, with a histogram's `_bucket`, `_sum` and `_count` series. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) names.add(m[1] + s);
  }
  return names;
}

/**
 * The proof of the observability deliverables against the real split stack (PostgreSQL, Kafka,
 * a webhook endpoint): every service serves /metrics on its own debug listener, each scrape passes
 * `promtool check metrics`, the alert rules pass `promtool check rules`, and every metric the
 * dashboard and the rules query is one some service exports.
 */
describe('metrics of the split stack, the dashboard and the alert rules', () => {
  const receiver = new WebhookReceiver();
  let dir: string;
  let drop: () => Promise<void>;
  const apps: LadingProcess[] = [];
  const debugUrls: Record<string, string> = {};
  let client: RegistryTestClient;
  const scrapes: Record<string, string> = {};
  let blobPut: Awaited<ReturnType<RegistryTestClient['pushBlob']>>;
  // Access lines (info) from the gateway and blob-upload; manifests has its access log switched off.
  const LOGGING: Record<string, Record<string, string>> = {
    gateway: { LADING_LOG_LEVEL: 'info' },
    'blob-upload': { LADING_LOG_LEVEL: 'info' },
    manifests: { LADING_LOG_LEVEL: 'info', LADING_LOG_ACCESSLOG_DISABLED: 'true' },
  };
  const accessLines = (app: string) =>
    apps
      .find((p) => p.app === app)!
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .filter((l) => l.context === 'Access');

  beforeAll(async () => {
    await receiver.start();
    dir = mkdtempSync(join(tmpdir(), 'lading-metrics-'));
    const config = join(dir, 'lading.yml');
    writeFileSync(
      config,
      stringify({
        notifications: { allowedhosts: ['127.0.0.1'], endpoints: [{ name: 'hook', url: receiver.url, timeout: '2s' }] },
      }),
    );
    const plan = await planSplit({
      LADING_CONFIG: config,
      LADING_KAFKA_BROKERS: sharedKafkaBrokers().join(','),
      LADING_NOTIFICATIONS_KAFKA_TOPIC: uniqueTopic('metrics'),
      LADING_NOTIFICATIONS_KAFKA_PARTITIONS: '1',
      LADING_NOTIFICATIONS_OUTBOX_POLLINTERVAL: '100ms',
      LADING_GC_REVIEWAFTER: '0s',
    });
    drop = () => plan.db.drop().then(() => rmSync(plan.dataDir, { recursive: true, force: true }));
    for (const a of plan.apps) {
      const debugPort = await freePort();
      debugUrls[a.app] = `http://127.0.0.1:${debugPort}`;
      apps.push(
        await startLading(
          a.app,
          { ...a.env, ...LOGGING[a.app], LADING_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}` },
          a.port,
        ),
      );
    }
    client = new RegistryTestClient(apps.find((p) => p.app === 'gateway')!.url);
    const image = randomImage({ layers: 2, layerSize: 20_000 });
    blobPut = await client.pushBlob('metrics/app', image.layers[0]);
    expect(blobPut.status).toBe(201);
    expect((await client.pushImage('metrics/app', image)).status).toBe(201);
    expect((await client.call('GET', '/v2/metrics/app/manifests/latest')).status).toBe(200);
    expect((await client.call('DELETE', '/v2/metrics/app/manifests/latest')).status).toBeLessThan(300);
    await eventually(async () => receiver.events().length >= 4, 60_000, 'webhook deliveries');
    for (const [app, url] of Object.entries(debugUrls)) scrapes[app] = await (await fetch(`${url}/metrics`)).text();
  }, 240_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all(apps.map((p) => p.stop()));
    await drop?.();
    await receiver.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(['gateway', 'blob-upload', 'manifests', 'notifications', 'gc-worker'])(
    '%s: /metrics passes promtool check metrics',
    (app) => {
      const text = scrapes[app];
      expect(text).toMatch(/^# TYPE registry_http_requests_total counter$/m);
      const r = spawnSync(promtool(), ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it('serves metrics on the debug listener only, never on the public port', async () => {
    for (const p of apps) {
      const r = await fetch(`${p.url}/metrics`);
      expect(await r.text()).not.toMatch(/registry_http_requests_total/);
    }
  });

  it('exports what each service measures', () => {
    expect(scrapes['gateway']).toMatch(
      /^registry_http_requests_total\{handler="manifest\.put",method="PUT",code="201"\} 1$/m,
    );
    expect(scrapes['blob-upload']).toMatch(/^lading_upload_sessions_open \d+$/m);
    expect(scrapes['blob-upload']).toMatch(/^lading_db_pool_connections\{state="idle"\} \d+$/m);
    expect(scrapes['notifications']).toMatch(/^lading_events_publish_duration_seconds_count\{bus="kafka"\} [1-9]\d*$/m);
    expect(scrapes['notifications']).toMatch(
      /^registry_notifications_events_total\{type="Successes",action="push",endpoint="hook"\} [1-9]\d*$/m,
    );
    expect(scrapes['notifications']).toMatch(/^registry_notifications_pending\{endpoint="hook"\} \d+$/m);
    expect(scrapes['notifications']).toMatch(/^registry_notifications_delivery_total\{endpoint="hook",delivery_type="delivered"\} [1-9]\d*$/m);
    // The manifest GET's pull event went through the manifests service's buffer.
    expect(scrapes['manifests']).toMatch(/^lading_pull_events_total\{outcome="recorded"\} [1-9]\d*$/m);
    expect(scrapes['manifests']).toMatch(/^lading_pull_events_buffered \d+$/m);
    expect(scrapes['manifests']).toMatch(/^lading_pull_event_write_failures_total 0$/m);
    expect(scrapes['gc-worker']).toMatch(/^lading_gc_queue_depth\{queue="blobs"\} \d+$/m);
  });

  it('logs one JSON access line per request, with the request id the gateway gave it, unless switched off', () => {
    const id = blobPut.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const atGateway = accessLines('gateway').filter((l) => l.request_id === id);
    expect(atGateway).toEqual([
      expect.objectContaining({
        level: 'info',
        method: 'PUT',
        operation: 'upload.complete',
        status: '201',
        bytes_in: expect.any(Number),
        duration_ms: expect.any(Number),
      }),
    ]);
    expect(atGateway[0].bytes_in).toBeGreaterThanOrEqual(20_000);
    // The service's line for the same request carries the gateway's id (it came in the request scope).
    expect(accessLines('blob-upload').filter((l) => l.request_id === id)).toEqual([
      expect.objectContaining({ operation: 'upload.complete', status: '201' }),
    ]);
    expect(accessLines('manifests')).toEqual([]);
    expect(accessLines('gateway').some((l) => l.operation === 'manifest.put')).toBe(true);
  });

  it('the alert rules pass promtool check rules', () => {
    const r = spawnSync(promtool(), ['check', 'rules', ALERTS], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it('every metric the dashboard and the alert rules query is one the services export', () => {
    const exported = new Set(Object.values(scrapes).flatMap((t) => [...exposedNames(t)]));
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const queries: string[] = [
      ...dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list
        .filter((v: { type: string }) => v.type === 'query')
        .map((v: { query: { query: string } }) => v.query.query),
      ...parse(readFileSync(ALERTS, 'utf8')).groups.flatMap((g: { rules: { expr: string }[] }) =>
        g.rules.map((r) => r.expr),
      ),
    ];
    expect(queries.length).toBeGreaterThan(25);
    const missing = queries.flatMap((q) =>
      metricNamesOf(q)
        .filter((n) => !exported.has(n))
        .map((n) => `${n} (in ${q.replace(/\s+/g, ' ')})`),
    );
    expect(missing).toEqual([]);
    for (const q of queries) expect(metricNamesOf(q).length).toBeGreaterThan(0);
  });
});
