import { randomImage, RegistryTestClient, sha256 } from '@lading/testing';
import { startReplicated, type ReplicatedStack } from '../support/replicated-stack';
import type { LadingProcess } from '../support/registry-processes';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MOVES = 150;
/** GETs kept in flight on the reading replica meanwhile, so a checked read often arrives while a batch is being read. */
const BACKGROUND_READERS = 8;

/**
 * Manifest reads across replicas: two manifests replicas on one PostgreSQL database, each behind
 * a gateway of its own, so that a write goes through one replica and the read right after it
 * through the other. A replica that answered from anything it remembered of the tag (a cache
 * invalidated only by its own writes, a statement started before the write's commit) would
 * serve the old digest here.
 */
describe('manifest GETs after a write acknowledged by another manifests replica (split, PostgreSQL)', () => {
  let stack: ReplicatedStack;
  let viaA: RegistryTestClient;
  let viaB: RegistryTestClient;
  const gateways: LadingProcess[] = [];

  beforeAll(async () => {
    stack = await startReplicated({ replicas: 2, storage: 'filesystem', env: { LADING_LOG_LEVEL: 'warn' } });
    for (const replica of stack.replicas.manifests) {
      gateways.push(await stack.startExtra('gateway', { LADING_SERVICES_MANIFESTS_URL: replica.url }));
    }
    [viaA, viaB] = gateways.map((g) => new RegistryTestClient(g.url));
  }, 300_000);

  afterAll(async () => {
    await Promise.all([viaA, viaB].map((c) => c?.close()));
    await stack?.stop();
  }, 120_000);

  /** `MOVES` distinct manifests over the same blobs (pushed once, through A). */
  async function manifests(repo: string): Promise<{ bytes: Buffer; digest: string }[]> {
    const image = randomImage({ layers: 1 });
    const pushed = await viaA.pushImage(repo, image, 'seed');
    expect(pushed.status).toBe(201);
    const base = JSON.parse(image.manifest.toString('utf8'));
    return Array.from({ length: MOVES }, (_, i) => {
      const bytes = Buffer.from(JSON.stringify({ ...base, annotations: { move: String(i) } }));
      return { bytes, digest: sha256(bytes) };
    });
  }

  /** GETs of `path` through B in a loop until `stop` says so; each must be 200 or 404. */
  function background(path: string, stop: () => boolean): Promise<string[]> {
    return Promise.all(
      Array.from({ length: BACKGROUND_READERS }, async () => {
        const odd: string[] = [];
        while (!stop()) {
          const r = await viaB.call('GET', path, { headers: { accept: OCI_MANIFEST } });
          if (r.status !== 200 && r.status !== 404) odd.push(`${r.status} ${r.body.toString('utf8', 0, 200)}`);
        }
        return odd;
      }),
    ).then((all) => all.flat());
  }

  it('never serves the old digest of a tag once its move is acknowledged', async () => {
    const repo = 'reads/tag-moves';
    const pushes = await manifests(repo);
    const path = `/v2/${repo}/manifests/latest`;
    let done = false;
    const readers = background(path, () => done);
    const stale: string[] = [];
    try {
      for (const [i, m] of pushes.entries()) {
        const put = await viaA.putManifest(repo, 'latest', m.bytes, OCI_MANIFEST);
        expect(put.status).toBe(201);
        const got = await viaB.call('GET', path, { headers: { accept: OCI_MANIFEST } });
        expect(got.status).toBe(200);
        if (got.headers['docker-content-digest'] !== m.digest || !got.body.equals(m.bytes))
          stale.push(`move ${i}: got ${got.headers['docker-content-digest']}, moved to ${m.digest}`);
      }
    } finally {
      done = true;
    }
    expect(await readers).toEqual([]);
    expect(stale).toEqual([]);
  }, 300_000);

  it('answers 404 through every replica once a manifest DELETE is acknowledged, by digest and by its tag', async () => {
    const repo = 'reads/deletes';
    const pushes = (await manifests(repo)).slice(0, 40);
    let done = false;
    const readers = background(`/v2/${repo}/manifests/doomed`, () => done);
    const served: string[] = [];
    try {
      for (const [i, m] of pushes.entries()) {
        expect((await viaA.putManifest(repo, 'doomed', m.bytes, OCI_MANIFEST)).status).toBe(201);
        // Read through both first, so that a replica that remembered it would have it to serve.
        for (const c of [viaA, viaB]) {
          expect((await c.call('GET', `/v2/${repo}/manifests/${m.digest}`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
          expect((await c.call('GET', `/v2/${repo}/manifests/doomed`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
        }
        const [deleter, other] = i % 2 === 0 ? [viaA, viaB] : [viaB, viaA];
        expect((await deleter.call('DELETE', `/v2/${repo}/manifests/${m.digest}`)).status).toBe(202);
        for (const ref of [m.digest, 'doomed']) {
          for (const [name, c] of [['deleting replica', deleter], ['other replica', other]] as const) {
            const r = await c.call('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
            if (r.status !== 404) served.push(`delete ${i}: ${ref} answered ${r.status} through the ${name}`);
          }
        }
      }
    } finally {
      done = true;
    }
    expect(await readers).toEqual([]);
    expect(served).toEqual([]);
  }, 300_000);
});
