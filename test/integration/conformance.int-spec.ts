import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  STACKS,
  clientSandbox,
  conformanceEnv,
  toolPath,
  uniqueRepo,
  type ClientSandbox,
  type ClientStack,
} from '../support/clients-tools';
import { countOutcomes, junitTotals, parseJunit } from '../support/clients-junit';
import { describeSpread, idleReplicas } from '../support/replicated-stack';

const ROOT = resolve(__dirname, '../..');

/**
 * Specs the suite skips on purpose for a registry configured as ours is; any other skip means a
 * workflow did not run and fails the test. Matched as substrings of the JUnit test-case name.
 */
const KNOWN_SKIPS = [
  // Alternatives to the specs that push the test tags / take the tag from OCI_TAG_NAME.
  'Get tag name from environment',
  'Populate registry with test tags (no push)',
  // Lading does no automatic cross-mount (OCI_AUTOMATIC_CROSSMOUNT=0).
  'Cross-mounting without from, and automatic content discovery enabled should return a 201',
  // Skipped by the suite when the mount just before it succeeded (201).
  'Cross-mounting of nonexistent blob should yield session id',
];

describe.each(STACKS)('OCI distribution-spec conformance suite against %s', (mode, startStack) => {
  let stack: ClientStack;
  let sandbox: ClientSandbox;
  let bin: string;

  beforeAll(async () => {
    bin = toolPath('OCI_CONFORMANCE_BIN');
    if (!existsSync(bin))
      throw new Error(`OCI_CONFORMANCE_BIN=${bin} does not exist: run \`bash scripts/services install conformance\``);
    sandbox = clientSandbox(`lading-conformance-${mode}-`);
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
    sandbox?.remove();
  });

  it('passes pull, push, content discovery and content management with only the deliberate skips', async () => {
    const reportDir = mkdtempSync(join(tmpdir(), `lading-conformance-report-${mode}-`));
    const started = Date.now();
    const run = await sandbox.run(bin, ['-test.v'], {
      check: false,
      timeoutMs: 600_000,
      cwd: reportDir,
      env: conformanceEnv(stack.url, uniqueRepo('conformance'), uniqueRepo('conformance-mount'), reportDir),
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);

    // CI keeps the reports (reports/ is gitignored).
    const kept = join(ROOT, 'reports', `conformance-${mode}`);
    rmSync(kept, { recursive: true, force: true });
    cpSync(reportDir, kept, { recursive: true });

    const junitPath = join(reportDir, 'junit.xml');
    if (!existsSync(junitPath)) {
      throw new Error(
        `conformance suite (exit ${run.code}) wrote no junit.xml\n${run.stdout.slice(-20_000)}\n${run.stderr.slice(-5_000)}`,
      );
    }
    const xml = readFileSync(junitPath, 'utf8');
    rmSync(reportDir, { recursive: true, force: true });
    const cases = parseJunit(xml);
    const all = countOutcomes(cases);
    // The parser must agree with the totals the report declares.
    expect({ tests: cases.length, failures: all.failed, errors: all.error, skipped: all.skipped }).toEqual(
      junitTotals(xml),
    );
    // Specs are the `[It]` nodes; the rest are suite hooks such as the HTML reporter.
    const counts = countOutcomes(cases.filter((c) => c.name.startsWith('[It] ')));
    const broken = cases.filter((c) => c.outcome === 'failed' || c.outcome === 'error');
    const unexpectedSkips = cases.filter(
      (c) => c.outcome === 'skipped' && !KNOWN_SKIPS.some((k) => c.name.includes(k)),
    );
    console.log(
      `conformance (${mode}): ${counts.passed} passed, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.error} errors ` +
        `of ${counts.passed + counts.skipped + counts.failed + counts.error} specs in ${seconds}s; reports in ${kept}`,
    );

    const summarize = (cs: typeof cases) =>
      cs.map((c) => `${c.outcome}: ${c.name}${c.message ? `\n    ${c.message}` : ''}`);
    expect(summarize(broken)).toEqual([]);
    expect(summarize(unexpectedSkips)).toEqual([]);
    expect(counts.passed).toBeGreaterThan(50);
    expect(run.code).toBe(0);
  });

  if (mode.includes('replicas')) {
    // The suite is one client on one connection, so it stays on one gateway (a connection
    // balancer sees one connection); behind it, each service's replicas share the work.
    it('spread the requests of the run over both replicas of blob-upload and manifests', () => {
      const spread = stack.spread!();
      console.log(`conformance (${mode}) requests per replica: ${describeSpread(spread)}`);
      expect(idleReplicas(spread, ['blob-upload', 'manifests'])).toEqual([]);
    });
  }
});
