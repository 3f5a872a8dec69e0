import { randomUUID } from 'node:crypto';
import type { ManifestRecord, MetadataDb, ReferenceGraph } from '@lading/metadata-db';
import type { BlobStorage } from '@lading/storage';
import { mulberry32 as prng, sha256 } from '@lading/testing';
import type { GarbageCollector } from './garbage-collector.service';

/**
 * The GC race harness: seeded random interleavings of pushes (blob upload, mount, manifest put,
 * tag, index put, referrer put), deletes and GC review batches, with the invariants checked after
 * every step. Each client operation runs as the services run it, phase by phase (a single-request
 * blob upload is: pin the digest, move the bytes into place, link in a transaction — see
 * UploadService.pushMonolithic), and the scheduler interleaves the phases of several clients and
 * of the collectors. Used on PGlite (steps one at a time: every interleaving of phases) and on
 * PostgreSQL (clients and collectors truly concurrent).
 */

/** The content every interleaving draws from: few blobs, so digests collide across images and repositories. */
const POOL = Array.from({ length: 5 }, (_, i) => Buffer.from(`race-blob-${i}`));
const REPOS = ['race/a', 'race/b'];
const TAGS = ['t1', 't2'];
const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

export interface RaceWorld {
  db: MetadataDb;
  storage: BlobStorage;
  /** One or more collectors (on PostgreSQL: each on its own connection pool, as two gc-workers). */
  collectors: GarbageCollector[];
}

/** A broken invariant, with the steps that led to it. */
export interface RaceViolation {
  seed: number;
  problem: string;
  trace: string[];
}

type Phase = AsyncGenerator<string, void, void>;

/** An image manifest over pool blobs `config` and `layer`, optionally a referrer of `subject`. */
function image(config: number, layer: number, subject?: string): { payload: Buffer; digest: string; blobs: string[] } {
  const blobs = [sha256(POOL[config]!), sha256(POOL[layer]!)];
  const body: Record<string, unknown> = { schemaVersion: 2, mediaType: IMAGE, config: { digest: blobs[0] }, layers: [{ digest: blobs[1] }] };
  if (subject) body.subject = { digest: subject };
  const payload = Buffer.from(JSON.stringify(body));
  return { payload, digest: sha256(payload), blobs };
}

function index(children: string[]): { payload: Buffer; digest: string } {
  const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: children.map((digest) => ({ digest })) }));
  return { payload, digest: sha256(payload) };
}

/** The client operations, each a generator yielding after every phase (one transaction or one storage step). */
class Clients {
  constructor(private readonly w: RaceWorld) {}

  /** A single-request blob upload, as UploadService.pushMonolithic does it. */
  async *uploadBlob(repo: string, blob: number): Phase {
    const bytes = POOL[blob]!;
    const digest = sha256(bytes);
    const id = randomUUID();
    await this.w.storage.createUpload(id);
    const { parts } = await this.w.storage.writePart(id, [], (async function* () {
      yield bytes;
    })());
    await this.w.db.transaction((tx) => tx.gc.pinCommit(id, digest));
    yield `pin ${digest.slice(7, 13)}`;
    await this.w.storage.commitUpload(id, parts, digest);
    yield `bytes ${digest.slice(7, 13)}`;
    await this.w.db.transaction(async (tx) => {
      await tx.blobs.linkBlob(repo, { digest, size: bytes.length });
      await tx.gc.unpinCommit(id);
    });
    await this.w.storage.deleteUpload(id);
    yield `link ${repo} ${digest.slice(7, 13)}`;
  }

  async *pushImage(repo: string, config: number, layer: number, tag: string | undefined, subject?: string): Phase {
    yield* this.uploadBlob(repo, config);
    yield* this.uploadBlob(repo, layer);
    yield* this.putImage(repo, config, layer, tag, subject);
  }

  async *putImage(repo: string, config: number, layer: number, tag: string | undefined, subject?: string): Phase {
    const m = image(config, layer, subject);
    const missing = await this.put({ repository: repo, digest: m.digest, mediaType: IMAGE, payload: m.payload, configDigest: m.blobs[0]!, subjectDigest: subject ?? null, artifactType: null, blobDigests: m.blobs, childDigests: [], tag });
    yield `put ${repo} ${m.digest.slice(7, 13)}${tag ? `:${tag}` : ''}${subject ? ` →${subject.slice(7, 13)}` : ''}${missing ? ` (refused: ${missing.slice(7, 13)} missing)` : ''}`;
  }

  async *putIndex(repo: string, children: [number, number][], tag: string): Phase {
    const digests = children.map(([c, l]) => image(c, l).digest);
    const ix = index(digests);
    const missing = await this.put({ repository: repo, digest: ix.digest, mediaType: INDEX, payload: ix.payload, configDigest: null, subjectDigest: null, artifactType: null, blobDigests: [], childDigests: digests, tag });
    yield `index ${repo} ${ix.digest.slice(7, 13)}:${tag}${missing ? ' (refused)' : ''}`;
  }

  async *mount(from: string, to: string, blob: number): Phase {
    const digest = sha256(POOL[blob]!);
    const ok = await this.w.db.transaction((tx) => tx.blobs.mountBlob(from, to, digest));
    yield `mount ${from}→${to} ${digest.slice(7, 13)}${ok ? '' : ' (fell back)'}`;
  }

  async *deleteManifest(repo: string, digest: string): Phase {
    await this.w.db.transaction((tx) => tx.manifests.deleteManifest(repo, digest));
    yield `delete ${repo} ${digest.slice(7, 13)}`;
  }

  async *deleteTag(repo: string, tag: string): Phase {
    await this.w.db.transaction((tx) => tx.tags.deleteTag(repo, tag));
    yield `untag ${repo}:${tag}`;
  }

  /** A blob DELETE, of a blob no manifest of the repository references (deleting a referenced one breaks the image by request). */
  async *unlinkBlob(repo: string, blob: number): Phase {
    const digest = sha256(POOL[blob]!);
    const done = await this.w.db.transaction(async (tx) => {
      const references = await tx.gc.lockLinkAndCountReferences(repo, digest);
      if (references === undefined || references > 0) return false;
      return (await tx.blobs.unlinkBlob(repo, digest)) !== undefined;
    });
    yield `unlink ${repo} ${digest.slice(7, 13)}${done ? '' : ' (kept)'}`;
  }

  private async put(m: ManifestRecord): Promise<string | undefined> {
    return this.w.db.transaction(async (tx) => (await tx.manifests.putManifest(m))?.missing);
  }
}

/** One random client operation. */
function randomOperation(c: Clients, rnd: () => number): Phase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const blob = () => Math.floor(rnd() * POOL.length);
  const repo = pick(REPOS);
  const r = rnd();
  if (r < 0.3) return c.pushImage(repo, blob(), blob(), rnd() < 0.7 ? pick(TAGS) : undefined);
  if (r < 0.4) return c.putImage(repo, blob(), blob(), pick(TAGS)); // tag what may be there untagged
  if (r < 0.5) return c.putIndex(repo, [[blob(), blob()], [blob(), blob()]], pick(TAGS));
  if (r < 0.58) return c.pushImage(repo, blob(), blob(), undefined, image(blob(), blob()).digest); // a referrer
  if (r < 0.66) return c.mount(pick(REPOS), repo, blob());
  if (r < 0.76) return c.deleteManifest(repo, rnd() < 0.7 ? image(blob(), blob()).digest : index([image(blob(), blob()).digest, image(blob(), blob()).digest]).digest);
  if (r < 0.88) return c.deleteTag(repo, pick(TAGS));
  return c.unlinkBlob(repo, blob());
}

async function* collectorSteps(w: RaceWorld, rnd: () => number, steps: number): Phase {
  for (let i = 0; i < steps; i++) {
    const queue = (['links', 'blobs', 'manifests'] as const)[Math.floor(rnd() * 3)]!;
    const gc = w.collectors[Math.floor(rnd() * w.collectors.length)]!;
    const r = await gc.reviewBatch(queue);
    yield `gc ${queue}: reviewed ${r.reviewed}, deleted ${r.deleted}`;
  }
}

/**
 * The invariants: every tagged image is fully pullable (its index's children are in the
 * repository, every blob of every image it reaches is linked there and its bytes are stored), and
 * every blob any link or manifest references has its bytes in storage. The graph is read in one
 * statement and walked here.
 */
export async function raceProblems(w: RaceWorld): Promise<string[]> {
  const graph = await w.db.read.gc.referenceGraphForTests();
  const problems = brokenTaggedImages(graph);
  const referenced = new Set([...graph.links.map((l) => l.digest), ...graph.references.filter((r) => r.kind === 'blob').map((r) => r.digest)]);
  for (const digest of referenced) {
    if ((await w.storage.statBlob(digest)) === null) problems.push(`the bytes of referenced blob ${digest.slice(7, 13)} are gone`);
  }
  return problems;
}

/** What keeps a tagged image from being pulled: a child of an index it reaches missing from the repository, or a blob of an image it reaches not linked there. */
function brokenTaggedImages(g: ReferenceGraph): string[] {
  const names = new Map(g.repositories.map((r) => [r.id, r.name]));
  const byDigest = new Map(g.manifests.map((m) => [`${m.repositoryId} ${m.digest}`, m.id]));
  const repositoryOf = new Map(g.manifests.map((m) => [m.id, m.repositoryId]));
  const linked = new Set(g.links.map((l) => `${l.repositoryId} ${l.digest}`));
  const referencesOf = new Map<number, ReferenceGraph['references']>();
  for (const r of g.references) referencesOf.set(r.manifestId, [...(referencesOf.get(r.manifestId) ?? []), r]);
  const problems: string[] = [];
  const seen = new Set<number>();
  const queue = g.tags.map((t) => t.manifestId);
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const repo = repositoryOf.get(id)!;
    for (const r of referencesOf.get(id) ?? []) {
      const key = `${repo} ${r.digest}`;
      if (r.kind === 'manifest') {
        const child = byDigest.get(key);
        if (child === undefined) problems.push(`child missing: ${names.get(repo)} ${r.digest}`);
        else queue.push(child);
      } else if (!linked.has(key)) problems.push(`blob not linked: ${names.get(repo)} ${r.digest}`);
    }
  }
  return problems;
}

/**
 * One interleaving: `clients` random client operations and `gcSteps` collector batches, phases
 * interleaved by the seed (sequentially), invariants checked after every phase. The violations found.
 */
export async function runInterleaving(w: RaceWorld, seed: number, options: { clients?: number; gcSteps?: number } = {}): Promise<RaceViolation[]> {
  const rnd = prng(seed);
  const c = new Clients(w);
  const actors: Phase[] = Array.from({ length: options.clients ?? 2 }, () => randomOperation(c, rnd));
  actors.push(collectorSteps(w, rnd, options.gcSteps ?? 4));
  const trace: string[] = [];
  while (actors.length > 0) {
    const i = Math.floor(rnd() * actors.length);
    const step = await actors[i]!.next();
    if (step.done) {
      actors.splice(i, 1);
      continue;
    }
    trace.push(step.value);
    // Steps that only add what they checked is there (a pin, bytes, a put whose references are
    // locked and present, a mount of a locked link) cannot break an invariant: checked after the
    // others (links, deletes, GC batches), which can.
    if (/^(pin|bytes|put|index|mount) /.test(step.value)) continue;
    const problems = await raceProblems(w);
    if (problems.length > 0) return problems.map((problem) => ({ seed, problem, trace: [...trace] }));
  }
  return [];
}

/**
 * Clients and collectors at once (PostgreSQL): `clients` concurrent client loops of `operations`
 * random operations each, and every collector reviewing until the clients are done; invariants
 * checked after each client operation and at the end.
 */
export async function runConcurrently(w: RaceWorld, seed: number, options: { clients: number; operations: number }): Promise<RaceViolation[]> {
  const violations: RaceViolation[] = [];
  let running = options.clients;
  // A check reads the database, then storage: no collector may delete in between (it would see
  // bytes gone that were no longer referenced). Collectors hold `gate` shared, a check alone.
  const gate = new Gate();
  const clientLoop = async (k: number) => {
    const rnd = prng(seed * 31 + k);
    const c = new Clients(w);
    const trace: string[] = [];
    try {
      for (let i = 0; i < options.operations && violations.length === 0; i++) {
        for await (const step of randomOperation(c, rnd)) trace.push(step);
        const problems = await gate.exclusive(() => raceProblems(w));
        for (const problem of problems) violations.push({ seed, problem, trace: trace.slice(-20) });
      }
    } catch (e) {
      // A push or delete that fails is a bug too (a 5xx for its client); and the collectors must stop.
      violations.push({ seed, problem: `a client operation failed: ${(e as Error).message}`, trace: trace.slice(-20) });
    } finally {
      running--;
    }
  };
  const gcLoop = async (gc: GarbageCollector, k: number) => {
    const rnd = prng(seed * 17 + k);
    while (running > 0) {
      await gate.shared(() => gc.reviewBatch((['links', 'blobs', 'manifests'] as const)[Math.floor(rnd() * 3)]!));
    }
  };
  await Promise.all([...Array.from({ length: options.clients }, (_, k) => clientLoop(k)), ...w.collectors.map((gc, k) => gcLoop(gc, k))]);
  for (const problem of await raceProblems(w)) violations.push({ seed, problem, trace: ['(at the end)'] });
  return violations;
}

/** A readers-writer gate: any number of `shared` runs at once, or one `exclusive` run. */
class Gate {
  private readers = 0;
  private writer: Promise<void> | undefined;
  private drained?: () => void;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    this.readers++;
    try {
      return await fn();
    } finally {
      if (--this.readers === 0) this.drained?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    let release!: () => void;
    this.writer = new Promise<void>((r) => (release = r));
    try {
      if (this.readers > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.writer = undefined;
      release();
    }
  }
}

/**
 * Liveness, the other half of GC's promise: once every tag is deleted and the collectors have
 * worked every queue empty (the review delay is 0; rows a busy target postponed are made due),
 * nothing is left — no manifest, link or blob row, no bytes. What is left, as problems.
 */
export async function leftAfterCollectingAll(w: RaceWorld): Promise<string[]> {
  await w.db.read.gc.untagAllForTests();
  for (let round = 0; round < 20; round++) {
    await w.db.read.gc.makeAllDueForTests();
    for (const gc of w.collectors) await gc.runOnce();
    if ((await w.db.read.gc.status()).queues.every((q) => q.depth === 0)) break;
  }
  const g = await w.db.read.gc.referenceGraphForTests();
  const problems = [
    ...g.manifests.map((m) => `manifest left: ${m.digest}`),
    ...g.links.map((l) => `link left: ${l.repositoryId} ${l.digest}`),
    ...(await w.db.read.gc.blobAndReviewRowsForTests()).map((r) => `row left: ${r}`),
  ];
  for await (const d of w.storage.listBlobs()) problems.push(`bytes left: ${d}`);
  return problems;
}

/** Empties the database's registry tables and the storage's blobs between batches of interleavings. */
export async function resetWorld(w: RaceWorld): Promise<void> {
  await w.db.read.gc.truncateForTests();
  const digests: string[] = [];
  for await (const d of w.storage.listBlobs()) digests.push(d);
  await w.storage.deleteBlobs(digests);
}
