import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import {
  HOSTILE_REQUIRED_COVERAGE,
  KNOWN_DEFECTS,
  hostileCases,
  hostileCoverage,
  hostileSeedContent,
  type HostileCase,
  type HostileRequest,
  type HostileTarget,
  type KnownDefect,
} from './hostile';
import { RegistryTestClient } from './registry-client';

/**
 * Runs hostile cases against a registry over raw HTTP and judges the answers; snapshots the
 * registry's database and storage so a test can show that nothing changed.
 */

/** How a case went wrong. */
export type HostileFailureKind = '5xx' | 'not-4xx' | 'wrong-4xx' | 'not-oci-envelope' | 'connection-error' | 'timeout';

/** One case the registry got wrong. */
export interface HostileFailure {
  case: HostileCase;
  kind: HostileFailureKind;
  status?: number;
  /** The start of the response body, or the connection error. */
  excerpt: string;
}

/** What a run saw. */
export interface HostileReport {
  seed: number;
  cases: number;
  durationMs: number;
  failures: HostileFailure[];
  /** Responses by status. */
  statuses: Record<number, number>;
  /**
   * Cases resent once because their connection broke before any answer on a reused keep-alive
   * socket (the race Node's documentation describes), with the case answered before on that
   * socket. A server that cuts the connection mid-request looks the same, so a resent case that
   * breaks again is a failure.
   */
  staleSocketRetries: { label: string; after?: string }[];
}

/** A response as the runner keeps it. */
interface Answer {
  status: number;
  body: Buffer;
}

const BODY_KEPT = 64 * 1024;
/** Per-request deadline: a request without an answer by then is a hang. */
export const HOSTILE_REQUEST_TIMEOUT_MS = 15_000;

/**
 * Sends every case, one at a time in order, over a keep-alive connection to `baseUrl` and
 * collects the failures: a status ≥ 500; a status outside 4xx (unless the case allows it); a
 * 4xx whose body is not the OCI envelope `{"errors":[{code,message,…}]}` (an empty body passes
 * only for HEAD, 405 and 416); a 4xx other than those the case names; a connection error or no
 * answer within the deadline. A connection the server closes after answering is fine.
 */
export async function runHostileCases(
  baseUrl: string,
  cases: readonly HostileCase[],
  seed: number,
): Promise<HostileReport> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const started = Date.now();
  const report: HostileReport = {
    seed,
    cases: cases.length,
    durationMs: 0,
    failures: [],
    statuses: {},
    staleSocketRetries: [],
  };
  try {
    let previous: string | undefined;
    for (const c of cases) {
      let outcome = await send(baseUrl, c, agent);
      if (outcome.kind === 'stale-socket') {
        report.staleSocketRetries.push({ label: c.label, after: previous });
        outcome = await send(baseUrl, c, agent);
      }
      previous = c.label;
      if (outcome.kind !== 'answer') {
        report.failures.push({
          case: c,
          kind: outcome.kind === 'timeout' ? 'timeout' : 'connection-error',
          excerpt: outcome.error,
        });
        continue;
      }
      const { status, body } = outcome.answer;
      report.statuses[status] = (report.statuses[status] ?? 0) + 1;
      const kind = judge(c, outcome.answer);
      if (kind) report.failures.push({ case: c, kind, status, excerpt: excerptOf(body) });
    }
  } finally {
    agent.destroy();
  }
  report.durationMs = Date.now() - started;
  return report;
}

function judge(c: HostileCase, { status, body }: Answer): HostileFailureKind | undefined {
  if (status >= 500) return '5xx';
  if (c.alsoCorrect?.status === status) return undefined;
  if (status < 400) return 'not-4xx';
  const bodyless = body.length === 0 && (c.method === 'HEAD' || status === 405 || status === 416);
  if (!bodyless && !isOciEnvelope(body)) return 'not-oci-envelope';
  if (c.statuses && !c.statuses.includes(status)) return 'wrong-4xx';
  return undefined;
}

/** True for a JSON body `{"errors":[{"code":"…","message":"…",…},…]}` with at least one error. */
export function isOciEnvelope(body: Buffer): boolean {
  let value: any;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  const errors = value?.errors;
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e: any) => typeof e?.code === 'string' && e.code !== '' && typeof e.message === 'string')
  );
}

type Outcome =
  | { kind: 'answer'; answer: Answer }
  | { kind: 'timeout' | 'connection-error' | 'stale-socket'; error: string };

/** One exchange. A body the server stops reading after it answered is not an error. */
function send(baseUrl: string, r: HostileRequest, agent: Agent): Promise<Outcome> {
  const url = new URL(baseUrl);
  return new Promise((resolve) => {
    let settled = false;
    let answered: Answer | undefined;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const headers: Record<string, string> = { ...r.headers };
    const hasLength = Object.keys(headers).some((k) => k.toLowerCase() === 'content-length');
    if (r.body && !hasLength) headers['content-length'] = String(r.body.length);
    const req = request({ host: url.hostname, port: url.port, method: r.method, path: r.path, headers, agent });
    const timer = setTimeout(() => {
      req.destroy();
      done({ kind: 'timeout', error: `no answer within ${HOSTILE_REQUEST_TIMEOUT_MS} ms` });
    }, HOSTILE_REQUEST_TIMEOUT_MS);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (d: Buffer) => {
        if (kept < BODY_KEPT) chunks.push(d);
        kept += d.length;
      });
      const finish = () => {
        answered = { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
        done({ kind: 'answer', answer: answered });
      };
      res.on('end', finish);
      // Cut short after the head: judge what arrived (an OCI body cut in half fails the envelope check).
      res.on('aborted', finish);
      res.on('error', finish);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (answered) return;
      const stale = req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE');
      done({ kind: stale ? 'stale-socket' : 'connection-error', error: `${e.code ?? ''} ${e.message}`.trim() });
    });
    req.end(r.body);
  });
}

function excerptOf(body: Buffer): string {
  const text = body.subarray(0, 300).toString('utf8');
  return body.length > 300 ? `${text}…` : text;
}

/** The request line of a case, cut to a readable length. */
export function requestLine(c: HostileRequest): string {
  const path = c.path.length > 160 ? `${c.path.slice(0, 160)}…(${c.path.length} chars)` : c.path;
  const extra = Object.keys(c.headers).length > 3 ? ` [${Object.keys(c.headers).length} headers]` : '';
  return `${c.method} ${path}${extra}${c.body ? ` (${c.body.length} body bytes)` : ''}`;
}

/** One failure on one line: label, request line, status and body excerpt. */
export function formatHostileFailure(f: HostileFailure): string {
  return `${f.case.label} | ${requestLine(f.case)} → ${f.kind}${f.status !== undefined ? ` ${f.status}` : ''} ${JSON.stringify(f.excerpt)}`;
}

/**
 * The verdict of a run: one line per failure that is not a known defect of `deployment`, and one
 * per known defect that did not fail (fixed: take it off the list). Empty when all is as expected.
 */
export function hostileVerdict(
  report: HostileReport,
  known: Readonly<Record<string, KnownDefect>>,
  deployment: 'embedded' | 'split',
): string[] {
  const applies = (key: string) => known[key]?.deployments.includes(deployment) ?? false;
  const failedKeys = new Set(report.failures.map((f) => f.case.key));
  const lines = report.failures.filter((f) => !applies(f.case.key)).map(formatHostileFailure);
  for (const key of Object.keys(known)) {
    if (applies(key) && !failedKeys.has(key))
      lines.push(`${key} | no longer fails on ${deployment}: remove it from KNOWN_DEFECTS`);
  }
  if (lines.length === 0) return [];
  return [
    `seed ${report.seed} (rerun with LADING_HOSTILE_SEED=${report.seed}): ${lines.length} unexpected results`,
    ...lines,
  ];
}

/** GET /v2/ answers 200: the registry is still up. */
export async function registryAlive(baseUrl: string): Promise<boolean> {
  const agent = new Agent({ keepAlive: false });
  try {
    const o = await send(baseUrl, { method: 'GET', path: '/v2/', headers: {} }, agent);
    return o.kind === 'answer' && o.answer.status === 200;
  } finally {
    agent.destroy();
  }
}

/**
 * Pushes the legitimate content the cases aim at (`hostileSeedContent(seed)`: an image tagged,
 * an artifact referring to it, and an upload session with one chunk committed) and describes it.
 */
export async function seedHostileTarget(client: RegistryTestClient, seed: number): Promise<HostileTarget> {
  const { uploadChunk, ...content } = hostileSeedContent(seed);
  const { repository } = content;
  const check = (what: string, r: { status: number; body: Buffer }, want: number) => {
    if (r.status !== want) throw new Error(`hostile seeding: ${what} answered ${r.status} ${excerptOf(r.body)}`);
  };
  for (const blob of [...content.blobs, content.emptyBlob])
    check(`blob ${blob.digest}`, await client.pushBlob(repository, blob), 201);
  const { manifest, referrer } = content;
  check('manifest', await client.putManifest(repository, content.tag, manifest.bytes, manifest.mediaType), 201);
  check('referrer', await client.putManifest(repository, referrer.digest, referrer.bytes, manifest.mediaType), 201);
  const start = await client.call('POST', `/v2/${repository}/blobs/uploads/`);
  check('upload start', start, 202);
  const patch = await client.call('PATCH', start.headers.location, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `0-${uploadChunk.length - 1}`,
      'content-length': String(uploadChunk.length),
    },
    body: uploadChunk,
  });
  check('upload chunk', patch, 202);
  return { ...content, upload: { id: start.headers['docker-upload-uuid'], size: uploadChunk.length } };
}

/** Runs one SQL statement and returns its rows (TypeORM's `DataSource.query`, or pg's `rows`). */
export type SqlQuery = (sql: string) => Promise<Record<string, unknown>[]>;

/** Every table of the registry's schema, snapshotted whole. */
export const REGISTRY_TABLES: readonly string[] = [
  'repositories',
  'blobs',
  'repository_blobs',
  'manifests',
  'manifest_references',
  'tags',
  'upload_sessions',
  'event_outbox',
];

/** Row count and md5 of the ordered contents of each table, and every file under storage with its size. */
export interface RegistrySnapshot {
  tables: Record<string, { rows: number; md5: string }>;
  storage: string[];
}

/**
 * The rows of each table as a snapshot sees them: whole, except the outbox's pull events: they
 * record reads that were served (a Range header the registry ignores still gets the blob), not
 * changes. (What the relay has sent, `event_outbox_unsent`, changes on its own schedule and is
 * not snapshotted.)
 */
const SNAPSHOT_ROWS: Readonly<Record<string, string>> = {
  event_outbox: `(SELECT id, seq, repository, action, payload, envelope_version, traceparent, tenant, created_at
                    FROM event_outbox WHERE action <> 'pull')`,
};

/** Takes a {@link RegistrySnapshot} through `sql` and of the folder `storageDir`. */
export async function snapshotRegistry(sql: SqlQuery, storageDir: string): Promise<RegistrySnapshot> {
  const tables: RegistrySnapshot['tables'] = {};
  for (const table of REGISTRY_TABLES) {
    const [row] = await sql(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5 FROM ${SNAPSHOT_ROWS[table] ?? table} t`,
    );
    tables[table] = { rows: Number(row.rows), md5: String(row.md5) };
  }
  return { tables, storage: listTree(storageDir) };
}

/** `relative/path size` for each file and `relative/dir/` for each folder under `root`, sorted. */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        out.push(`${relPath}/`);
        walk(path, relPath);
      } else {
        out.push(`${relPath} ${st.size}`);
      }
    }
  };
  walk(root, '');
  return out;
}

/** What differs between two snapshots, one line per table or storage entry; empty when equal. */
export function diffSnapshots(before: RegistrySnapshot, after: RegistrySnapshot): string[] {
  const lines: string[] = [];
  for (const table of REGISTRY_TABLES) {
    const a = before.tables[table];
    const b = after.tables[table];
    if (a.rows !== b.rows || a.md5 !== b.md5)
      lines.push(`table ${table}: ${a.rows} rows (${a.md5}) → ${b.rows} rows (${b.md5})`);
  }
  const was = new Set(before.storage);
  const is = new Set(after.storage);
  for (const entry of before.storage) if (!is.has(entry)) lines.push(`storage: - ${entry}`);
  for (const entry of after.storage) if (!was.has(entry)) lines.push(`storage: + ${entry}`);
  return lines;
}

/** Everything one hostile run produced. */
export interface HostileRun {
  cases: HostileCase[];
  report: HostileReport;
  before: RegistrySnapshot;
  after: RegistrySnapshot;
}

/**
 * The whole suite against the registry at `baseUrl`: seeds the target content, generates the
 * cases for `seed`, snapshots through `sql` and of `storageDir`, runs the cases, snapshots again.
 * When `LADING_HOSTILE_REPORT` names a file, the full report is written there as JSON.
 */
export async function runHostileSuite(options: {
  baseUrl: string;
  sql: SqlQuery;
  storageDir: string;
  seed: number;
}): Promise<HostileRun> {
  const { baseUrl, sql, storageDir, seed } = options;
  const client = new RegistryTestClient(baseUrl);
  let target: HostileTarget;
  try {
    target = await seedHostileTarget(client, seed);
  } finally {
    await client.close();
  }
  const cases = hostileCases(target, seed);
  const before = await snapshotRegistry(sql, storageDir);
  const report = await runHostileCases(baseUrl, cases, seed);
  const after = await snapshotRegistry(sql, storageDir);
  const file = process.env.LADING_HOSTILE_REPORT;
  if (file) writeFileSync(file, JSON.stringify(report, null, 1));
  return { cases, report, before, after };
}

/**
 * The checks every hostile-suite spec makes of its run, as `it` blocks (call inside a `describe`
 * whose `beforeAll` ran the suite; `run` returns it): coverage of at least 1000 requests over
 * every route, the verdict for `deployment`, and nothing changed in the database or the storage.
 * The spec adds its own liveness check, which differs between deployments.
 */
export function itChecksHostileRun(run: () => HostileRun, deployment: 'embedded' | 'split'): void {
  it('sends at least 1000 invalid requests over every route and method', () => {
    expect(run().cases.length).toBeGreaterThanOrEqual(1000);
    const covered = hostileCoverage(run().cases);
    expect(HOSTILE_REQUIRED_COVERAGE.filter((op) => !covered[op])).toEqual([]);
    expect(run().report.cases).toBe(run().cases.length);
  });

  it('answers each with a 4xx OCI error: no 5xx, no hang, no other status (known defects aside)', () => {
    expect(hostileVerdict(run().report, KNOWN_DEFECTS, deployment)).toEqual([]);
  });

  it('changed nothing in the database or the storage', () => {
    const { before, after } = run();
    expect(before.tables.manifests.rows).toBe(2);
    expect(before.tables.tags.rows).toBe(1);
    expect(before.tables.upload_sessions.rows).toBe(1);
    expect(diffSnapshots(before, after)).toEqual([]);
  });
}
