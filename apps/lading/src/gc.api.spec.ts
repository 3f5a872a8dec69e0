import { join } from 'node:path';
import type { RegistryEvent } from '@lading/contracts';
import type { EventBus } from '@lading/events';
import { adminToken, EVENT_BUS, loadConfig } from '@lading/nest-common';
import { FilesystemBlobStorage } from '@lading/storage';
import { indexOf, randomBlob, randomImage, RegistryTestClient, sha256, type TestImage } from '@lading/testing';
import { startTestRegistry, type TestRegistry } from './embedded.harness';
import { gcCommand } from './gc.command';

jest.setTimeout(120_000);

const SECRET = 'gc-api-spec-secret-0123456789';
/** Background loops off: each test runs GC passes through the admin API, so what it sees is what one pass did. */
const ENV = { LADING_HTTP_SECRET: SECRET, LADING_GC_DISABLED: 'true', LADING_GC_REVIEWAFTER: '0s', LADING_NOTIFICATIONS_PULLS_ENABLED: 'false' };
const AUTH = { authorization: `Bearer ${adminToken(SECRET)}` };

interface Harness {
  reg: TestRegistry;
  c: RegistryTestClient;
  storage: FilesystemBlobStorage;
  events: RegistryEvent[];
  gc(dryRun?: boolean): Promise<{ summary: { deleted: number; bytes: number; byQueue: Record<string, { deleted: number }> } }>;
  stored(digest: string): Promise<boolean>;
  close(): Promise<void>;
}

async function start(env: Record<string, string> = {}): Promise<Harness> {
  const events: RegistryEvent[] = [];
  const reg = await startTestRegistry({ ...ENV, ...env }, undefined, async (app) => {
    await app.get<EventBus>(EVENT_BUS).subscribe('gc-spec', async (d) => void events.push(d.event));
  });
  const c = new RegistryTestClient(reg.url);
  const storage = new FilesystemBlobStorage({ rootDirectory: join(reg.dataDir, 'storage') });
  return {
    reg,
    c,
    storage,
    events,
    async gc(dryRun = false) {
      const r = await c.call('POST', `/admin/gc/run${dryRun ? '?dryrun=true' : ''}`, { headers: AUTH });
      expect(r.status).toBe(200);
      const lines = r.body.toString().trim().split('\n').map((l) => JSON.parse(l));
      const last = lines.at(-1);
      if (!last.summary) throw new Error(`gc run failed: ${r.body}`);
      return last;
    },
    stored: async (digest) => (await storage.statBlob(digest)) !== null,
    async close() {
      await c.close();
      await reg.close();
    },
  };
}

async function pullable(h: Harness, repo: string, ref: string, image: TestImage): Promise<boolean> {
  const m = await h.c.call('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: image.mediaType } });
  if (m.status !== 200) return false;
  for (const b of [image.config, ...image.layers]) {
    const r = await h.c.call('GET', `/v2/${repo}/blobs/${b.digest}`);
    if (r.status !== 200 || !r.body.equals(b.bytes)) return false;
  }
  return true;
}

describe('online garbage collection (embedded, PGlite + filesystem)', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('collects what a deleted manifest referenced and nothing another image still uses', async () => {
    h = await start();
    const a = randomImage({ layers: 2 });
    const shared = a.layers[0]!;
    const b = randomImage({ layers: 1 });
    b.layers.unshift(shared);
    const bm = JSON.parse(b.manifest.toString());
    bm.layers.unshift({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: shared.digest, size: shared.size });
    b.manifest = Buffer.from(JSON.stringify(bm));
    b.digest = sha256(b.manifest);
    expect((await h.c.pushImage('gc/app', a, 'a')).status).toBe(201);
    expect((await h.c.pushImage('gc/app', b, 'b')).status).toBe(201);
    // Nothing is garbage while both are tagged (the review delay is 0).
    expect((await h.gc()).summary.deleted).toBe(0);
    expect(await pullable(h, 'gc/app', 'a', a)).toBe(true);

    expect((await h.c.call('DELETE', `/v2/gc/app/manifests/${a.digest}`)).status).toBe(202);
    const dry = await h.gc(true);
    expect(dry.summary.deleted).toBeGreaterThan(0);
    expect(await h.stored(a.config.digest)).toBe(true); // a dry run changes nothing
    const run = await h.gc();
    // a's config and its own layer: two links, then two blobs.
    expect(run.summary.byQueue.links?.deleted).toBe(2);
    expect(run.summary.byQueue.blobs?.deleted).toBe(2);
    expect(run.summary.bytes).toBe(a.config.size + a.layers[1]!.size);
    expect(await h.stored(a.config.digest)).toBe(false);
    expect(await h.stored(a.layers[1]!.digest)).toBe(false);
    expect(await h.stored(shared.digest)).toBe(true);
    expect(await pullable(h, 'gc/app', 'b', b)).toBe(true);
    expect((await h.c.call('HEAD', `/v2/gc/app/blobs/${a.config.digest}`)).status).toBe(404);
    // Each removal is a delete event by the collector, relayed: from the repository (the links),
    // then of the bytes (registry-wide, repository "").
    const gcDeletes = (repository: string) =>
      h.events.filter((x) => x.action === 'delete' && x.actor.name === 'lading-gc' && x.target.repository === repository).map((x) => x.target.digest);
    await eventuallyEvents(h, () => gcDeletes('gc/app').length + gcDeletes('').length >= 4);
    expect(gcDeletes('gc/app').sort()).toEqual([a.config.digest, a.layers[1]!.digest].sort());
    expect(gcDeletes('').sort()).toEqual([a.config.digest, a.layers[1]!.digest].sort());
    expect((await h.gc()).summary.deleted).toBe(0);
  });

  it('collects a blob pushed without a manifest once the review delay passed, and not before', async () => {
    h = await start({ LADING_GC_REVIEWAFTER: '1h' });
    const blob = randomBlob(300);
    expect((await h.c.pushBlob('gc/loose', blob)).status).toBe(201);
    expect((await h.gc()).summary.deleted).toBe(0);
    expect(await h.stored(blob.digest)).toBe(true);
    await h.close();

    h = await start();
    const other = randomBlob(200);
    expect((await h.c.pushBlob('gc/loose', other)).status).toBe(201);
    const run = await h.gc();
    expect(run.summary.byQueue.links?.deleted).toBe(1);
    expect(run.summary.byQueue.blobs?.deleted).toBe(1);
    expect(await h.stored(other.digest)).toBe(false);
  });

  it('keeps untagged manifests unless gc.deleteuntagged, and then keeps the children of a tagged index', async () => {
    h = await start();
    const old = randomImage({ layers: 1 });
    expect((await h.c.pushImage('gc/tags', old, 'v1')).status).toBe(201);
    expect((await h.c.pushImage('gc/tags', randomImage({ layers: 1 }), 'v1')).status).toBe(201); // v1 moves
    expect((await h.gc()).summary.deleted).toBe(0);
    expect((await h.c.call('GET', `/v2/gc/tags/manifests/${old.digest}`)).status).toBe(200);
    await h.close();

    h = await start({ LADING_GC_DELETEUNTAGGED: 'true' });
    const child1 = randomImage({ layers: 1 });
    const child2 = randomImage({ layers: 1 });
    expect((await h.c.pushImage('gc/idx', child1, child1.digest)).status).toBe(201);
    expect((await h.c.pushImage('gc/idx', child2, child2.digest)).status).toBe(201);
    const index = indexOf([child1, child2].map((c) => ({ digest: c.digest, size: c.manifest.length, mediaType: c.mediaType })));
    expect((await h.c.putManifest('gc/idx', 'multi', index.manifest, index.mediaType)).status).toBe(201);
    const lone = randomImage({ layers: 1 });
    expect((await h.c.pushImage('gc/idx', lone, lone.digest)).status).toBe(201);
    const run = await h.gc();
    expect(run.summary.byQueue.manifests?.deleted).toBe(1); // the untagged image no index holds
    expect((await h.c.call('GET', `/v2/gc/idx/manifests/${lone.digest}`)).status).toBe(404);
    expect(await h.stored(lone.layers[0]!.digest)).toBe(false);
    expect(await pullable(h, 'gc/idx', child1.digest, child1)).toBe(true);
    expect(await pullable(h, 'gc/idx', child2.digest, child2)).toBe(true);

    expect((await h.c.call('DELETE', '/v2/gc/idx/manifests/multi')).status).toBe(202); // the tag
    const after = await h.gc();
    expect(after.summary.byQueue.manifests?.deleted).toBe(3); // the index, then its children
    expect(await h.stored(child1.layers[0]!.digest)).toBe(false);
    expect(await h.stored(child2.config.digest)).toBe(false);
  });

  it('keeps a referrer as long as its subject, and collects it when the subject goes', async () => {
    h = await start({ LADING_GC_DELETEUNTAGGED: 'true' });
    const subject = randomImage({ layers: 1 });
    expect((await h.c.pushImage('gc/ref', subject, 'v1')).status).toBe(201);
    const sbom = randomImage({ layers: 1, artifactType: 'application/spdx+json', subject: { digest: subject.digest, size: subject.manifest.length, mediaType: subject.mediaType } });
    expect((await h.c.pushImage('gc/ref', sbom, sbom.digest)).status).toBe(201);
    expect((await h.gc()).summary.deleted).toBe(0); // untagged, but its subject is there
    expect((await h.c.call('GET', `/v2/gc/ref/manifests/${sbom.digest}`)).status).toBe(200);

    expect((await h.c.call('DELETE', `/v2/gc/ref/manifests/${subject.digest}`)).status).toBe(202);
    const run = await h.gc();
    expect(run.summary.byQueue.manifests?.deleted).toBe(1);
    expect((await h.c.call('GET', `/v2/gc/ref/manifests/${sbom.digest}`)).status).toBe(404);
    expect(await h.stored(sbom.layers[0]!.digest)).toBe(false);
    expect(await h.stored(subject.layers[0]!.digest)).toBe(false);
  });

  it('answers the admin API only with the admin token, and reports the queues', async () => {
    h = await start();
    expect((await h.c.call('GET', '/admin/gc/status')).status).toBe(401);
    expect((await h.c.call('POST', '/admin/gc/run', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await h.c.call('POST', '/admin/gc/run?dryrun=maybe', { headers: AUTH })).status).toBe(400);
    expect((await h.c.pushBlob('gc/status', randomBlob(100))).status).toBe(201);
    const before = (await h.c.call('GET', '/admin/gc/status', { headers: AUTH })).json();
    expect(before.queues.find((q: { queue: string }) => q.queue === 'links')).toMatchObject({ depth: 1, due: 1 });
    await h.gc();
    const after = (await h.c.call('GET', '/admin/gc/status', { headers: AUTH })).json();
    expect(after.queues.every((q: { depth: number }) => q.depth === 0)).toBe(true);
    expect(after.counters).toMatchObject({ deleted: 2, bytes: 100 });
    expect(after.counters.byMediaType['application/octet-stream']).toEqual({ rows: 1, bytes: 100 });
  });
});

describe('lading gc run (the command, through the admin API of the embedded registry)', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  /** Runs `lading gc run` against the registry with its progress going to a recording stream. */
  async function run(isTTY: boolean, ...flags: string[]): Promise<{ out: string; err: string[] }> {
    let out = '';
    const err: string[] = [];
    const done = await gcCommand(['run', ...flags, '--url', h.reg.url], loadConfig(ENV), {
      out: { write: (t: string) => (out += t) },
      err: { write: (t: string) => err.push(t), isTTY, columns: 200 },
    });
    expect(done).toBe(true);
    return { out, err };
  }

  const doneIn = (line: string) => line.replace(/done in [\d.]+m?s/, 'done in T');

  it('draws a bar per queue pass on a terminal, writes plain lines off one, and ends with the summary', async () => {
    h = await start();
    // Garbage: a loose blob of 1,000 bytes; and a tagged image that stays.
    expect((await h.c.pushBlob('gc/cli', randomBlob(1000))).status).toBe(201);
    expect((await h.c.pushImage('gc/cli', randomImage({ layers: 1 }), 'v1')).status).toBe(201);

    // On a terminal (a dry run, so the same garbage is there after): each pass starts with its
    // bar at 0 % out of the rows due, redraws in place (how often depends on the clock), and its
    // closing line replaces the bar.
    const tty = await run(true, '--dry-run');
    expect(tty.err.filter((w) => !w.startsWith('\r')).map((w) => w.replace(/ \d+m?s$/, ''))).toEqual([
      'gc: manifests [------------------------] 0% 0/1 items',
      'gc: links [------------------------] 0% 0/3 items',
    ]);
    expect(tty.err.filter((w) => w.endsWith('\n')).map(doneIn)).toEqual([
      '\r\x1b[2Kgc: manifests: 1/1 items, done in T\n',
      '\r\x1b[2Kgc: links: 3/3 items, done in T\n',
    ]);
    // (The loose blob's link is deleted only in the dry run's rolled-back transaction: no blob falls due.)
    expect(tty.out).toMatch(/^gc dry run: reviewed 4 items in 2 batches; would delete 1 \(0 B\)/);

    // Off a terminal: whole lines only, one closing line per pass (manifests: the tagged image,
    // kept; links: the loose blob's and the image's two; blobs: the loose one), then the summary.
    const plain = await run(false);
    expect(plain.err.join('')).not.toMatch(/\r|\x1b/);
    expect(plain.err.join('').split('\n').filter(Boolean).map(doneIn)).toEqual([
      'gc: manifests: 1/1 items, done in T',
      'gc: links: 3/3 items, done in T',
      'gc: blobs: 1/1 items, 1000 B, done in T',
    ]);
    expect(plain.out.split('\n')[0]).toBe('gc run: reviewed 5 items in 3 batches; deleted 2 (1000 B); postponed 0');
    expect(plain.out).toMatch(/^ {2}blobs +reviewed 1, deleted 1 \(1000 B\)$/m);
    expect(plain.out).toMatch(/^ {2}application\/octet-stream: 1 \(1000 B\)$/m);
  });
});

async function eventuallyEvents(h: Harness, ok: (e: RegistryEvent[]) => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok(h.events)) {
    if (Date.now() > deadline) throw new Error(`events did not arrive: ${JSON.stringify(h.events.map((e) => [e.action, e.target.digest]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
