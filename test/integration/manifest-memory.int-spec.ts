import { randomBytes } from 'node:crypto';
import { blobOf, RegistryTestClient, sha256, type TestBlob } from '@lading/testing';
import { startEmbedded, startSplit, type LadingProcess, type SplitStack } from '../support/registry-processes';
import { currentRss, mib, peakRss, resetPeakRss } from '../support/robustness-streams';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ANNOTATIONS = 390;
const ANNOTATION_BYTES = 10_000;

/**
 * Memory per manifest PUT is bounded: three concurrent PUTs of the conformance suite's
 * large-manifest case (390 annotations of 10 KB: 3.9 MB each, 11.7 MB together), GETs of them and
 * a referrers list carrying 3.9 MB of annotations raise the registry process's peak RSS (VmHWM,
 * reset just before) by less than the bound.
 *
 * Embedded, measured on the 2-core test machine: 568 and 729 MiB before the fix (PGlite's
 * text-encoded bytea parameters, ~65 bytes of V8 heap per payload byte, and the jsonb
 * annotations); 37-76 MiB after it over eight runs (about 20 of it PGlite's WebAssembly heap
 * reaching its high-water mark once, the rest transient copies awaiting V8's garbage collector).
 * 200 MiB is over twice the worst run and well under the old cost.
 */
const EMBEDDED_RISE_BOUND = 200 * MiB;
/**
 * Split mode, the manifests process on PostgreSQL: only Node-side copies. node-postgres already
 * sent bytea as binary, so the old code rose by 120-123 MiB here and this bound does not tell it
 * apart; now 70-91 MiB. It guards against per-byte copies coming back on this path.
 */
const SPLIT_RISE_BOUND = 160 * MiB;

/** A ~3.9 MB OCI manifest of 390 annotations of 10 KB (distinct per `seed`), optionally a referrer. */
function largeManifest(
  config: TestBlob,
  layer: TestBlob,
  seed: number,
  subject?: { digest: string; size: number },
): Buffer {
  const annotations: Record<string, string> = {};
  for (let i = 0; i < ANNOTATIONS; i++) {
    annotations[`org.opencontainers.conformance.a${i}`] = String.fromCharCode(97 + ((seed * 7 + i) % 26)).repeat(
      ANNOTATION_BYTES,
    );
  }
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
      ...(subject ? { subject: { mediaType: OCI_MANIFEST, ...subject } } : {}),
      annotations,
    }),
  );
}

/**
 * Pushes the blobs and a small manifest (so first-use costs of code paths are paid), then, with
 * the process's peak-RSS counter reset, three large manifests at once (the third a referrer of
 * the first), GETs of each and the first one's referrers; checks every answer and returns the
 * process's peak RSS rise over that phase.
 */
async function largeManifestRise(url: string, proc: LadingProcess): Promise<number> {
  const client = new RegistryTestClient(url);
  try {
    const name = 'memory/large';
    const config = blobOf(
      JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }),
    );
    const layer = blobOf(randomBytes(512));
    for (const b of [config, layer]) expect((await client.pushBlob(name, b)).status).toBe(201);
    const warm = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
        annotations: { warm: 'up' },
      }),
    );
    expect((await client.putManifest(name, 'warm', warm, OCI_MANIFEST)).status).toBe(201);
    expect((await client.call('GET', `/v2/${name}/manifests/warm`)).status).toBe(200);

    const first = largeManifest(config, layer, 0);
    const bodies = [
      first,
      largeManifest(config, layer, 1),
      largeManifest(config, layer, 2, { digest: sha256(first), size: first.length }),
    ];
    const pid = proc.proc.pid!;
    const reset = resetPeakRss(pid);
    const before = currentRss(pid);
    let sampled = before;
    const sampler = setInterval(() => (sampled = Math.max(sampled, currentRss(pid))), 20);
    const phases: string[] = [];
    const phase = (label: string) =>
      phases.push(`${label} ${mib(Math.max(sampled, reset ? peakRss(pid) : sampled) - before)}`);
    try {
      const puts = await Promise.all(bodies.map((b, i) => client.putManifest(name, `large-${i}`, b, OCI_MANIFEST)));
      expect(puts.map((r) => r.status)).toEqual([201, 201, 201]);
      expect(puts[2].headers['oci-subject']).toBe(sha256(first));
      phase('puts');
      const gets = await Promise.all(bodies.map((b) => client.call('GET', `/v2/${name}/manifests/${sha256(b)}`)));
      gets.forEach((r, i) => {
        expect(r.status).toBe(200);
        expect(r.body.equals(bodies[i])).toBe(true);
      });
      phase('gets');
      const referrers = await client.call('GET', `/v2/${name}/referrers/${sha256(first)}`);
      expect(referrers.status).toBe(200);
      const listed = referrers.json<{
        manifests: { digest: string; size: number; annotations?: Record<string, string> }[];
      }>().manifests;
      expect(listed.map((m) => [m.digest, m.size])).toEqual([[sha256(bodies[2]), bodies[2].length]]);
      expect(Object.keys(listed[0].annotations ?? {})).toHaveLength(ANNOTATIONS);
      expect(listed[0].annotations!['org.opencontainers.conformance.a0']).toHaveLength(ANNOTATION_BYTES);
      phase('referrers');
    } finally {
      clearInterval(sampler);
    }
    const peak = Math.max(sampled, reset ? peakRss(pid) : sampled);
    console.log(
      `${proc.app}: 3 x ${mib(first.length)} MiB manifests: RSS ${mib(before)} MiB before, peak ${mib(peak)} MiB ` +
        `(rise ${mib(peak - before)} MiB${reset ? '' : ', sampled: clear_refs refused'}; peak rise after ${phases.join(', ')} MiB)`,
    );
    return peak - before;
  } finally {
    await client.close();
  }
}

describe('memory per manifest PUT (large manifests, concurrently)', () => {
  describe('embedded (PGlite)', () => {
    let registry: LadingProcess;
    beforeAll(async () => {
      registry = await startEmbedded();
    }, 120_000);
    afterAll(async () => {
      await registry?.stop();
    });

    it('three concurrent 3.9 MB manifest PUTs, their GETs and referrers stay under the bound', async () => {
      expect(await largeManifestRise(registry.url, registry)).toBeLessThan(EMBEDDED_RISE_BOUND);
    });
  });

  const pg = process.env.LADING_TEST_PG_URL ? describe : describe.skip;
  pg('split (the manifests service on PostgreSQL)', () => {
    let stack: SplitStack;
    beforeAll(async () => {
      stack = await startSplit({ withWorkers: false });
    }, 180_000);
    afterAll(async () => {
      await stack?.stop();
    });

    it('three concurrent 3.9 MB manifest PUTs, their GETs and referrers stay under the bound', async () => {
      expect(await largeManifestRise(stack.url, stack.apps['manifests'])).toBeLessThan(SPLIT_RISE_BOUND);
    });
  });
});
