/**
 * The configurations `BENCH_SUITE` chooses from: which registries run, on what storage, in how
 * many rounds, and which ratios the report shows.
 *
 * - `filesystem` (the default): Lading embedded (one process, PGlite) and the reference, both on
 *   the local filesystem; one round, Lading / reference.
 * - `s3`: Lading split (five processes), Lading embedded (one process), both on PostgreSQL, and
 *   the reference, all three on the test MinIO with the s3 driver; a round with blob redirects
 *   off, then one with them on; split / reference, embedded / reference and split / embedded
 *   (what the gateway and the process split cost on the same storage and database).
 * - `gets`: manifest and small blob GETs in every deployment (see below).
 * - `pulls`: the curl push and pull of the large blob through split, embedded and the reference
 *   on the filesystem: what the gateway costs on a pull at the network limit.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { craneAvailable, craneImage, describeCraneImage } from './crane';
import { databaseBackends, minioProcesses } from './proc-stats';
import { startLadingEmbedded, startLadingSplit, startReference, S3_CHUNK_SIZE, type Target } from './registries';
import type { Ratio } from './report';
import { binarySize } from './stats';
import { WRK_BIN, wrkManifestGet, wrkSmallBlobGet } from './wrk';
import { CURL_BIN, CURL_WORKLOADS, curlPullBig, curlPushBig } from './curl';
import { manifestGet, WORKLOADS, type Backends, type Scale, type Workload } from './workloads';

/** One set of registries, started together and run through the suite's workloads. */
export interface Round {
  id: string;
  /** A heading, when the suite has several rounds. */
  title?: string;
  description?: string;
  /** Whether every blob GET must answer 307 to the storage. */
  blobRedirect: boolean;
  /** Starts the round's registries; the report's columns follow this order. */
  start(referenceBin: string): Promise<Target[]>;
}

/** A configuration of the benchmark. */
export interface Suite {
  name: string;
  title: string;
  /** What Lading runs as, for the report's header. */
  ladingSetup: string;
  rounds: Round[];
  ratios: Ratio[];
  workloads: Workload[];
  /** The report file under bench/results at this scale; at full scale it is committed. */
  resultsFile(scale: Scale): string;
  /** The README section a full run refreshes: `<!-- <marker>:start -->` … `<!-- <marker>:end -->`. */
  readmeMarker: string;
  /** Throws, saying what to set up, when something the suite needs is missing. */
  check(): void;
  /** Facts for the report's header (versions, storage, image). */
  facts(scale: Scale): Promise<string[]>;
  /** Notes for the report, after the common ones. */
  notes: string[];
  /** The processes besides a target's own that work for it. */
  backends(target: Target): Backends;
}

const filesystem: Suite = {
  name: 'filesystem',
  title: 'Lading vs the reference registry',
  ladingSetup: '(embedded: one process, PGlite, filesystem storage)',
  rounds: [
    {
      id: 'filesystem',
      blobRedirect: false,
      start: (referenceBin) => Promise.all([startLadingEmbedded('Lading'), startReference(referenceBin)]),
    },
  ],
  ratios: [{ numerator: 'Lading', denominator: 'reference' }],
  get workloads() {
    return [...WORKLOADS, ...CURL_WORKLOADS, ...(existsSync(WRK_BIN) ? [wrkManifestGet, wrkSmallBlobGet] : [])];
  },
  resultsFile: (scale) => (scale.name === 'full' ? 'latest.md' : `latest-${scale.name}.md`),
  readmeMarker: 'results',
  check: () => undefined,
  facts: async () => [],
  notes: [
    'Both registries run at the same time, each as a child process on 127.0.0.1 with a fresh temp data directory; ' +
      'each workload runs against one, then the other, and the order alternates from one workload to the next. Warm-up is not measured.',
    "Lading's database is created by `lading migrate` before `lading serve` starts, so the server opens an existing PGlite " +
      "database: PGlite's first boot (initdb) leaves several hundred MB of WebAssembly memory resident in the process that ran it.",
  ],
  backends: () => ({}),
};

function need(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(
      `BENCH_SUITE=s3 needs ${name}: start the backends (bash scripts/services start) and ` +
        'load their settings (eval "$(bash scripts/services env)")',
    );
  return value;
}

/** A key prefix for this run's registries in the test bucket: `bench/<time>-<random>`. */
const RUN_PREFIX = `bench/${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;

function s3Round(id: string, title: string, redirect: boolean, description: string): Round {
  return {
    id,
    title,
    description,
    blobRedirect: redirect,
    start: (referenceBin) => {
      const storage = (name: string) => ({
        driver: 's3' as const,
        rootDirectory: `${RUN_PREFIX}/${id}/${name}`,
        redirect,
      });
      return Promise.all([
        startLadingSplit('split', storage('split')),
        startLadingEmbedded('embedded', storage('embedded'), 'postgres'),
        startReference(referenceBin, storage('reference')),
      ]);
    },
  };
}

/** The MinIO serving the test endpoint: its processes (found once; it is not ours and keeps running). */
let minioPids: number[] | undefined;
function minio(): number[] {
  minioPids ??= minioProcesses(need('LADING_TEST_S3_ENDPOINT'));
  return minioPids;
}

function versionOf(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0];
  } catch {
    return 'version unknown';
  }
}

async function postgresVersion(): Promise<string> {
  const client = new PgClient({ connectionString: need('LADING_TEST_PG_URL') });
  try {
    await client.connect();
    return `PostgreSQL ${(await client.query('SHOW server_version')).rows[0].server_version}`;
  } catch {
    return 'PostgreSQL (version unknown)';
  } finally {
    await client.end().catch(() => undefined);
  }
}

const s3: Suite = {
  name: 's3',
  title: 'Lading vs the reference registry on object storage (MinIO)',
  ladingSetup:
    '(split: gateway, blob-upload, manifests, notifications and gc-worker, one process each; embedded: one process; ' +
    'both on PostgreSQL, blobs with the s3 driver)',
  rounds: [
    s3Round(
      'redirect-off',
      'Redirects off',
      false,
      'Blob GETs are served by the registry, which streams the object from MinIO (Lading: `storage.redirect.disable=true`; ' +
        'reference: `storage: redirect: disable: true`).',
    ),
    s3Round(
      'redirect-on',
      'Redirects on',
      true,
      'Blob GETs answer 307 to a presigned MinIO URL, which the client follows: the registry serves no blob bytes (both ' +
        "registries' default on S3).",
    ),
  ],
  ratios: [
    { numerator: 'split', denominator: 'reference' },
    { numerator: 'embedded', denominator: 'reference' },
    { numerator: 'split', denominator: 'embedded' },
  ],
  get workloads() {
    return craneAvailable() ? [...WORKLOADS, craneImage] : WORKLOADS;
  },
  resultsFile: (scale) => (scale.name === 'full' ? 'latest-s3.md' : `latest-s3-${scale.name}.md`),
  readmeMarker: 'results-s3',
  check() {
    for (const name of [
      'LADING_TEST_PG_URL',
      'LADING_TEST_S3_ENDPOINT',
      'LADING_TEST_S3_ACCESS_KEY',
      'LADING_TEST_S3_SECRET_KEY',
      'LADING_TEST_S3_BUCKET',
      'LADING_TEST_S3_REGION',
    ])
      need(name);
  },
  async facts(scale) {
    const [pid] = minio();
    const minioVersion = pid ? versionOf(readlinkSync(`/proc/${pid}/exe`), ['--version']) : 'not found';
    const facts = [
      `Storage: MinIO (${minioVersion}) at ${need('LADING_TEST_S3_ENDPOINT')}, bucket \`${need('LADING_TEST_S3_BUCKET')}\`; ` +
        `each registry under its own new root directory \`${RUN_PREFIX}/<round>/<registry>\`, purged at the end; ` +
        `part size (\`chunksize\`) ${binarySize(S3_CHUNK_SIZE)} for both`,
      `Database: ${await postgresVersion()} (the test server); a new database for each Lading registry, dropped at the end`,
    ];
    if (craneAvailable())
      facts.push(`Real client: crane ${versionOf(need('CRANE'), ['version'])}; image: ${describeCraneImage(scale)}`);
    return facts;
  },
  notes: [
    'Each round starts its three registries at the same time, on 127.0.0.1, each with a fresh temp data directory and its own root directory in the bucket; each workload runs against one after the other, and the order rotates from one workload to the next. Warm-up is not measured.',
    'Lading embedded runs here on PostgreSQL, like split, so that split / embedded is the cost of the process split ' +
      '(the gateway hop, the services apart) on the same storage and database. The filesystem suite runs it on PGlite.',
    "Split: the sum over its processes of CPU time and of each process's peak RSS (an upper bound of the peak of the sum: " +
      'the processes need not peak at the same moment); the per-process tables break them down. The RSS target is ' +
      'checked against that sum for split. Notifications and gc-worker run too (no webhook endpoint is configured); ' +
      'their share is in the per-process tables.',
    "PostgreSQL backends' CPU is that of the server processes of the registry's own database (found by their process " +
      'title); a backend that ends within a measurement (pool idle timeout) takes its CPU with it. The reference ' +
      'registry has no database: it keeps everything in the bucket.',
    'MinIO is shared: its CPU time is all of its work while the workload ran, including any other user of the test ' +
      'MinIO at the time (see the load averages). Both registries compose a blob server-side (Lading: multipart copy of ' +
      "the upload's parts; the reference: a copy of its upload file), so MinIO writes each pushed byte twice for either.",
  ],
  backends: (target) => ({ database: targetBackends(target), storage: minio() }),
};

/** The test PostgreSQL's backends serving `target`'s database (found by process title), if it has one. */
function targetBackends(target: Target): number[] | undefined {
  const database = target.database;
  return database ? databaseBackends(database) : undefined;
}

/**
 * The hot read paths in every deployment, on the filesystem: split (gateway → services on
 * PostgreSQL), embedded on PGlite (the default), embedded on PostgreSQL, and the reference.
 * split / embedded-pg is the gateway's overhead: the same database and storage, one process
 * instead of a gateway hop to the services.
 */
const gets: Suite = {
  name: 'gets',
  title: 'Lading vs the reference registry: manifest and small blob GETs',
  ladingSetup:
    '(split: gateway, blob-upload, manifests, notifications and gc-worker on PostgreSQL; embedded: one process on PGlite; ' +
    'embedded-pg: one process on PostgreSQL; all on filesystem storage)',
  rounds: [
    {
      id: 'gets',
      blobRedirect: false,
      start: (referenceBin) =>
        Promise.all([
          startLadingSplit('split', { driver: 'filesystem' }),
          startLadingEmbedded('embedded', { driver: 'filesystem' }),
          startLadingEmbedded('embedded-pg', { driver: 'filesystem' }, 'postgres'),
          startReference(referenceBin),
        ]),
    },
  ],
  ratios: [
    { numerator: 'split', denominator: 'reference' },
    { numerator: 'embedded', denominator: 'reference' },
    { numerator: 'split', denominator: 'embedded-pg' },
  ],
  workloads: [manifestGet, wrkManifestGet, wrkSmallBlobGet],
  resultsFile: (scale) => (scale.name === 'full' ? 'latest-gets.md' : `latest-gets-${scale.name}.md`),
  readmeMarker: 'results-gets',
  check() {
    need('LADING_TEST_PG_URL');
    if (!existsSync(WRK_BIN)) throw new Error(`BENCH_SUITE=gets needs wrk at ${WRK_BIN} (apt-get install wrk, or set BENCH_WRK)`);
  },
  facts: async () => [`Database: ${await postgresVersion()} (the test server) for split and embedded-pg; PGlite for embedded`],
  notes: [
    'All four registries run at the same time on 127.0.0.1; each workload runs against one after the other, the order rotating.',
    'Gateway overhead is split / embedded-pg: the same PostgreSQL and filesystem storage, the one difference being the ' +
      'gateway hop to separate service processes.',
  ],
  backends: (target) => ({ database: targetBackends(target) }),
};

/**
 * The large blob pushed with curl and pulled with `curl -o /dev/null` through split (gateway →
 * blob-upload on PostgreSQL), embedded (one process on PGlite, the default) and the reference,
 * all on the filesystem: split / embedded is what the gateway hop costs a pull.
 */
const pulls: Suite = {
  name: 'pulls',
  title: 'Lading vs the reference registry: large blob pulls with curl, split and embedded',
  ladingSetup:
    '(split: gateway, blob-upload, manifests, notifications and gc-worker on PostgreSQL; embedded: one process on PGlite; ' +
    'both on filesystem storage)',
  rounds: [
    {
      id: 'pulls',
      blobRedirect: false,
      start: (referenceBin) =>
        Promise.all([startLadingSplit('split', { driver: 'filesystem' }), startLadingEmbedded('embedded'), startReference(referenceBin)]),
    },
  ],
  ratios: [
    { numerator: 'split', denominator: 'reference' },
    { numerator: 'embedded', denominator: 'reference' },
    { numerator: 'split', denominator: 'embedded' },
  ],
  workloads: [curlPushBig, curlPullBig],
  resultsFile: (scale) => (scale.name === 'full' ? 'latest-pulls.md' : `latest-pulls-${scale.name}.md`),
  readmeMarker: 'results-pulls',
  check() {
    need('LADING_TEST_PG_URL');
    if (!existsSync(CURL_BIN)) throw new Error(`BENCH_SUITE=pulls needs curl at ${CURL_BIN} (apt-get install curl, or set BENCH_CURL)`);
  },
  facts: async () => [`Database: ${await postgresVersion()} (the test server) for split; PGlite for embedded`],
  notes: [
    'All three registries run at the same time on 127.0.0.1; each workload runs against one after the other, the order rotating.',
    "The gateway's cost on a pull is split / embedded: the bytes take one more hop (blob-upload → gateway → curl) in " +
      'split. The database differs (PostgreSQL, PGlite) but a blob GET makes one lookup before its bytes stream.',
  ],
  backends: (target) => ({ database: targetBackends(target) }),
};

/** The suites by name. */
export const SUITES: Record<string, Suite> = { filesystem, s3, gets, pulls };
