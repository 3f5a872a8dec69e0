/**
 * A reader for the JUnit XML that Ginkgo (the OCI conformance suite) writes: just enough XML to
 * list each test case with its outcome, without pulling in an XML library.
 */

/** How one test case ended. */
export type JunitOutcome = 'passed' | 'failed' | 'error' | 'skipped';

/** One `<testcase>`. */
export interface JunitCase {
  name: string;
  classname: string;
  outcome: JunitOutcome;
  /** The message of the failure, error or skip, if any. */
  message?: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Replaces XML entity and character references in `s`. */
export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    return ENTITIES[ref] ?? whole;
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([\w:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) out[m[1]] = unescapeXml(m[3] ?? m[4] ?? '');
  return out;
}

/** Every `<testcase>` of a JUnit report, in document order. */
export function parseJunit(xml: string): JunitCase[] {
  const cases: JunitCase[] = [];
  // A test case is either self-closing or runs to its closing tag; test cases do not nest.
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = attributes(m[1]);
    const body = m[3] ?? '';
    const child = /<(failure|error|skipped)\b([^>]*?)\/?>/.exec(body);
    let outcome: JunitOutcome = 'passed';
    if (child) outcome = child[1] === 'failure' ? 'failed' : (child[1] as JunitOutcome);
    else if (attrs.status === 'skipped' || attrs.status === 'pending') outcome = 'skipped';
    else if (attrs.status === 'failed') outcome = 'failed';
    else if (attrs.status !== undefined && attrs.status !== 'passed') outcome = 'error'; // panicked, interrupted, aborted, timedout
    const message = child ? attributes(child[2]).message : undefined;
    cases.push({
      name: attrs.name ?? '',
      classname: attrs.classname ?? '',
      outcome,
      ...(message !== undefined ? { message } : {}),
    });
  }
  return cases;
}

/** The totals a report declares on its `<testsuite>` elements, summed (to cross-check {@link parseJunit}). */
export function junitTotals(xml: string): { tests: number; failures: number; errors: number; skipped: number } {
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const m of xml.matchAll(/<testsuite\b([^>]*)>/g)) {
    const a = attributes(m[1]);
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += Number(a[k] ?? 0);
  }
  return totals;
}

/** Counts of each outcome. */
export function countOutcomes(cases: JunitCase[]): Record<JunitOutcome, number> {
  const counts: Record<JunitOutcome, number> = { passed: 0, failed: 0, error: 0, skipped: 0 };
  for (const c of cases) counts[c.outcome]++;
  return counts;
}
