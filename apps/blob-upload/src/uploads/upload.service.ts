import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  BlobUploadInvalidError,
  BlobUploadUnknownError,
  crashPoint,
  DigestInvalidError,
  linkActiveSpan,
  OciAttributes,
  RangeInvalidError,
  type RequestScope,
  withSpan,
} from '@lading/contracts';
import { Digester, parseDigest, type DigestAlgorithm } from '@lading/manifest';
import { blobEvent, MetadataDb, type UploadSession } from '@lading/metadata-db';
import { BLOB_STORAGE, oncePerScrape, SampledGauge } from '@lading/nest-common';
import { KeyedSerializer, type BlobStorage, type UploadPart, type WritePartResult } from '@lading/storage';
import { repositoryOf } from '../scope';
import { HashStateCache } from './hash-state.cache';
import { ResumedSha256, type UploadHasher } from './upload-hasher';

/**
 * How long an append waits for the next bytes of its body before it gives up (400, its part
 * discarded): the HTTP server has no body timeout, so large uploads can take long, and a
 * client that went silent must not hold the session (and its lease) for ever.
 */
export const APPEND_IDLE_TIMEOUT_MS = 30_000;

/**
 * How long a writer's lease on a session lasts without renewal. An append renews it every third
 * of that while its bytes stream, so a live append never loses it; one whose process died stops
 * renewing, and after this long (by the database's clock) the session is free again. Whatever
 * the dead writer stored is a part the session never recorded: it is not part of the upload and
 * goes with it. Longer than the idle timeout, so an append abandons its body before its lease
 * could lapse.
 */
export const UPLOAD_LEASE_MS = 60_000;

/** How long a request waits for another writer's lease to end before it answers 416 (see `acquireLease`). */
export const LEASE_WAIT_MS = 1_000;

/** A chunk of request body on its way into an upload. */
export interface ChunkInput {
  body: AsyncIterable<Buffer>;
  /** Declared body length (Content-Length); undefined for a streamed (chunked) body. */
  length?: number;
  /** The `Content-Range` start and end (inclusive), when the client sent one. */
  range?: { start: number; end: number };
}

/** Where the outcome of an upload points. */
export interface CompletedBlob {
  digest: string;
  size: number;
}

/** A writer's hold on a session: its lease token, and the signal that fires if it loses the lease. */
interface Writer {
  owner: string;
  signal: AbortSignal;
}

const sessions = {
  open: new SampledGauge({ name: 'lading_upload_sessions_open', help: 'Upload sessions open (started, neither completed nor cancelled nor purged), in the database.' }),
  writing: new SampledGauge({ name: 'lading_upload_sessions_writing', help: 'Upload sessions a process is writing to now (leased).' }),
};

/**
 * Upload sessions: start, append (chunked or streamed), status, complete, cancel, and
 * cross-repository mount. Bytes are hashed while they stream into storage; a blob becomes visible
 * in the repository only after its digest is verified and its bytes are committed. Every method
 * takes the request scope first; the repository is the scope's.
 */
@Injectable()
export class UploadService implements OnModuleInit, OnModuleDestroy {
  private readonly locks = new KeyedSerializer();
  private readonly removeGauges: Array<() => void> = [];

  constructor(
    @Inject(MetadataDb) private readonly db: MetadataDb,
    private readonly hashes: HashStateCache,
    @Inject(BLOB_STORAGE) private readonly storage: BlobStorage,
  ) {}

  onModuleInit(): void {
    const counts = oncePerScrape(() => this.db.read.uploads.countOpen());
    this.removeGauges.push(
      sessions.open.add(async (set) => set({}, (await counts()).open)),
      sessions.writing.add(async (set) => set({}, (await counts()).writing)),
    );
  }

  onModuleDestroy(): void {
    for (const remove of this.removeGauges.splice(0)) remove();
  }

  /** Opens a session in the scope's repository (no repository row is created until a blob lands). */
  async startUpload(scope: RequestScope): Promise<UploadSession> {
    const id = randomUUID();
    const repository = repositoryOf(scope);
    await this.storage.createUpload(id);
    await this.db.read.uploads.createSession(id, repository, scope.traceparent);
    return { id, repository, size: 0, parts: [], leased: false, committingDigest: null, hashCheckpoint: null, traceparent: scope.traceparent };
  }

  /** The session, or BLOB_UPLOAD_UNKNOWN. */
  async getUpload(scope: RequestScope, id: string): Promise<UploadSession> {
    const session = isUuid(id) ? await this.db.read.uploads.findSession(repositoryOf(scope), id) : undefined;
    if (!session) throw new BlobUploadUnknownError(id);
    return session;
  }

  /** Appends a chunk at the session's end; a chunk that starts elsewhere is RANGE_INVALID (416). */
  async appendChunk(scope: RequestScope, id: string, chunk: ChunkInput): Promise<UploadSession> {
    return this.locks.run(id, async () => {
      const session = await this.getUpload(scope, id);
      checkChunk(session, chunk);
      await this.withLease(session, (writer) => this.appendAsWriter(session, chunk, writer));
      return session;
    });
  }

  /** Appends an optional last chunk, verifies `digest` and makes the blob visible in the scope's repository. */
  async completeUpload(
    scope: RequestScope,
    id: string,
    digest: string,
    chunk: ChunkInput | undefined,
    url: (digest: string) => string,
  ): Promise<CompletedBlob> {
    const parsed = parseDigest(digest);
    const wanted = parsed.toString();
    const repository = repositoryOf(scope);
    return this.locks.run(id, async () => {
      const session = await this.getUpload(scope, id);
      // The closing request's span points back at the one that opened the session (maybe another trace).
      linkActiveSpan(session.traceparent, { [OciAttributes.operation]: 'upload.start' });
      if (chunk) checkChunk(session, chunk);
      await this.withLease(session, async (writer) => {
        // The last chunk: no checkpoint, the digest is checked right here.
        if (chunk) await this.appendAsWriter(session, chunk, writer, false);
        else if (session.committingDigest !== null) {
          // A previous attempt verified these parts as `committingDigest` and died before the
          // database knew the outcome: finish it, for that digest only (never link another blob
          // of this size). Committing is repeatable; parts already gone are BLOB_UPLOAD_UNKNOWN.
          if (session.committingDigest !== wanted) throw new BlobUploadUnknownError(id);
          await this.storage.commitUpload(id, session.parts, wanted);
          crashPoint('upload.commit.stored');
          return;
        }
        // Checked before the digest: a cached hash must not vouch for parts that are gone.
        if (!(await this.storage.uploadExists(id))) throw new BlobUploadUnknownError(id);
        const actual = await hashSpan(wanted, session.size, () => this.digestOf(session, parsed.algorithm));
        if (actual !== wanted) throw new DigestInvalidError(undefined, { expected: wanted, actual });
        if (!(await this.db.read.uploads.recordCommit(id, writer.owner, wanted))) throw new BlobUploadUnknownError(id);
        crashPoint('upload.commit.verified');
        await this.storage.commitUpload(id, session.parts, wanted);
        crashPoint('upload.commit.stored');
      });
      await this.db.transaction(async (tx) => {
        await tx.blobs.linkBlob(repository, { digest: wanted, size: session.size });
        await tx.uploads.deleteSession(id);
        await tx.outbox.append(scope, blobEvent('push', repository, { digest: wanted, size: session.size }, url(wanted)));
      });
      crashPoint('upload.commit.linked');
      this.hashes.drop(id);
      return { digest: wanted, size: session.size };
    });
  }

  /**
   * The single-request upload (`POST ?digest=` with the body): no session row is written, the
   * bytes go to a private upload area and are committed once verified.
   */
  async pushMonolithic(scope: RequestScope, digest: string, chunk: ChunkInput, url: (digest: string) => string): Promise<CompletedBlob> {
    const parsed = parseDigest(digest);
    const wanted = parsed.toString();
    const repository = repositoryOf(scope);
    const id = randomUUID();
    await this.storage.createUpload(id);
    let pinned = false;
    try {
      // The algorithm is known before the first byte: hash with it as the bytes stream.
      const state = new Digester(parsed.algorithm);
      const { parts, size } = await this.writeChunk(id, [], chunk, state);
      const actual = await hashSpan(wanted, size, async () => state.digest());
      if (actual !== wanted) throw new DigestInvalidError(undefined, { expected: wanted, actual });
      // Pinned against GC while the bytes move into place (see GcStore.pinCommit).
      await this.db.transaction((tx) => tx.gc.pinCommit(id, wanted));
      pinned = true;
      await this.storage.commitUpload(id, parts, wanted);
      await this.db.transaction(async (tx) => {
        await tx.blobs.linkBlob(repository, { digest: wanted, size });
        await tx.gc.unpinCommit(id);
        await tx.outbox.append(scope, blobEvent('push', repository, { digest: wanted, size }, url(wanted)));
      });
      pinned = false;
      return { digest: wanted, size };
    } finally {
      if (pinned) await this.db.read.gc.unpinCommit(id).catch(() => undefined);
      await this.storage.deleteUpload(id).catch(() => undefined);
    }
  }

  /** Abandons the session and its bytes (an append still running elsewhere then fails). */
  async cancelUpload(scope: RequestScope, id: string): Promise<void> {
    await this.locks.run(id, async () => {
      await this.getUpload(scope, id);
      await this.db.read.uploads.deleteSession(id);
      this.hashes.drop(id);
      await this.storage.deleteUpload(id);
    });
  }

  /**
   * Links blob `digest` of repository `from` into the scope's repository without moving bytes.
   * False (and no change) when `from` does not have it, so the caller falls back to a normal upload.
   */
  async mountBlob(scope: RequestScope, from: string, digest: string, url: string): Promise<boolean> {
    const repository = repositoryOf(scope);
    return this.db.transaction(async (tx) => {
      const blob = await tx.blobs.mountBlob(from, repository, digest);
      if (!blob) return false;
      await tx.outbox.append(scope, blobEvent('mount', repository, blob, url, from));
      return true;
    });
  }

  /**
   * Runs `work` holding the session's writer lease: one writer at a time across every process.
   * The lease is renewed while `work` runs; if a renewal finds it lost, the writer's signal aborts
   * its append. A session another writer holds is RANGE_INVALID (416): the client retries.
   */
  private async withLease(session: UploadSession, work: (writer: Writer) => Promise<void>): Promise<void> {
    const owner = randomUUID();
    const uploads = this.db.read.uploads;
    if (!(await this.acquireLease(session, owner))) {
      throw new RangeInvalidError(session.size, {
        size: session.size,
        reason: 'another request is writing to this upload, or just did; get its status and retry',
      });
    }
    const aborter = new AbortController();
    const renew = setInterval(() => {
      uploads.renewLease(session.id, owner, UPLOAD_LEASE_MS).then(
        (held) => {
          if (!held) aborter.abort(new BlobUploadUnknownError(session.id));
        },
        () => undefined, // a failed renewal is retried at the next tick; the lease outlasts two misses
      );
    }, UPLOAD_LEASE_MS / 3);
    renew.unref();
    try {
      await work({ owner, signal: aborter.signal });
    } finally {
      clearInterval(renew);
      await uploads.releaseLease(session.id, owner).catch(() => undefined);
    }
  }

  /**
   * Takes the session's lease for `owner`, waiting up to {@link LEASE_WAIT_MS} while another
   * writer holds it at the same size: a writer whose request just failed (its body cut short, the
   * client already told) gives it up within moments, and the client's next chunk, which a load
   * balancer may send to another replica, should not get a 416 for that. False when the lease
   * stays taken or the size moved (then a 416 is the right answer at once).
   */
  private async acquireLease(session: UploadSession, owner: string): Promise<boolean> {
    const uploads = this.db.read.uploads;
    const deadline = Date.now() + LEASE_WAIT_MS;
    for (;;) {
      if (await uploads.acquireLease(session.id, session.size, owner, UPLOAD_LEASE_MS)) return true;
      const now = await uploads.findSession(session.repository, session.id);
      if (!now || now.size !== session.size || Date.now() >= deadline) return false;
      if (now.leased) await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Streams a chunk in as `writer` as a new part, then records the new part list and size (in
   * `session` too), with the hash state of those bytes when `checkpoint` and one can be had.
   * Superseded parts (a staged part the new one holds) are deleted only once the new list is
   * recorded; if recording fails, the new part is deleted instead. A failed append forgets the
   * running hash (it has seen bytes the session does not hold).
   */
  private async appendAsWriter(session: UploadSession, chunk: ChunkInput, writer: Writer, checkpoint = true): Promise<void> {
    // An append that records no checkpoint (the closing PUT's) needs no shadow of its bytes.
    const state = this.hashes.take(session.id, session.size) ?? (await this.resumeHash(session, checkpoint));
    try {
      // Storage errors carry their OCI codes (a vanished upload is BLOB_UPLOAD_UNKNOWN).
      const written = await this.writeChunk(session.id, session.parts, chunk, state, writer.signal);
      crashPoint('upload.append.stored');
      let saved = checkpoint && this.hashes.checkpoints ? await state.checkpoint() : null;
      // A shadow that stopped short may offer no more than the session has already.
      if (saved && saved.offset <= (session.hashCheckpoint?.offset ?? -1)) saved = null;
      const uploads = this.db.read.uploads;
      if (!(await uploads.advanceSize(session.id, writer.owner, session.size, written.size, written.parts, saved ?? undefined))) {
        // The session was cancelled or purged meanwhile (or the lease lost): these bytes are not its.
        await this.storage.deleteParts(session.id, written.parts.slice(-1)).catch(() => undefined);
        throw new BlobUploadUnknownError(session.id);
      }
      crashPoint('upload.append.recorded');
      // Left behind if this fails: an unrecorded part, removed with the upload.
      await this.storage.deleteParts(session.id, written.superseded).catch(() => undefined);
      session.size = written.size;
      session.parts = written.parts;
      if (saved) session.hashCheckpoint = saved;
    } catch (e) {
      state.dispose();
      throw e;
    }
    this.hashes.put(session.id, state);
  }

  /** Streams `chunk` into upload `id` as a part after `parts`, hashing as it goes; checks the declared lengths. */
  private async writeChunk(
    id: string,
    parts: readonly UploadPart[],
    chunk: ChunkInput,
    state: { update(chunk: Uint8Array): unknown },
    signal?: AbortSignal,
  ): Promise<WritePartResult> {
    checkChunk(undefined, chunk);
    const expected = chunk.range ? chunk.range.end - chunk.range.start + 1 : chunk.length;
    const body = withIdleTimeout(countBytes(chunk.body, expected), APPEND_IDLE_TIMEOUT_MS);
    return this.storage.writePart(id, parts, body, { onData: (c) => state.update(c), signal });
  }

  /**
   * The running sha256 of a session whose state this process does not hold: continues from the
   * session's hash checkpoint, reading only the stored bytes after it (none when the last append
   * recorded one), or else re-hashes every stored byte once. A checkpoint that covers less than
   * half the upload is not used: hash-wasm, which must then hash the rest, is several times
   * slower than node:crypto, so re-reading everything into node:crypto costs less. `shadowed`:
   * whether a later checkpoint of it may be asked for (else a native hash is not shadowed).
   */
  private async resumeHash(session: UploadSession, shadowed: boolean): Promise<UploadHasher> {
    const saved = session.hashCheckpoint;
    const usable = saved !== null && saved.offset <= session.size && saved.offset * 2 >= session.size;
    const resumed = usable ? await ResumedSha256.resume(saved) : undefined;
    const state = resumed ?? this.hashes.fresh(shadowed);
    const from = resumed ? resumed.bytes : 0;
    try {
      if (from < session.size) {
        const bytes = await this.storage.readUpload(session.id, session.parts, { start: from, end: session.size - 1 });
        for await (const c of bytes) state.update(c as Buffer);
      }
    } catch (e) {
      state.dispose();
      throw e;
    }
    return state;
  }

  /**
   * The digest of the session's bytes with `algorithm`. Chunked uploads hash sha256 as they
   * stream (the digest a client names comes only with the last request); another algorithm
   * re-reads the stored bytes once.
   */
  private async digestOf(session: UploadSession, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === 'sha256') {
      const state = this.hashes.take(session.id, session.size) ?? (await this.resumeHash(session, false));
      this.hashes.put(session.id, state);
      return state.digest();
    }
    return (await this.rehash(session, algorithm)).digest();
  }

  private async rehash(session: UploadSession, algorithm: DigestAlgorithm): Promise<Digester> {
    const digester = new Digester(algorithm);
    for await (const c of await this.storage.readUpload(session.id, session.parts)) digester.update(c as Buffer);
    return digester;
  }
}

/**
 * Finishes the hash of an upload's `bytes` in a span `blob.hash` (the bytes streamed through it as
 * they were stored; a resumed or other-algorithm hash re-reads them here, under this span).
 */
function hashSpan(expected: string, bytes: number, digest: () => Promise<string>): Promise<string> {
  const attributes = { [OciAttributes.digest]: expected, 'lading.hash.algorithm': expected.split(':')[0], 'lading.hash.bytes': bytes };
  return withSpan('blob.hash', { attributes }, digest);
}

/**
 * Refuses a chunk whose headers contradict each other (400) or that does not start at the
 * session's committed size (416), before anything is locked or written.
 */
function checkChunk(session: UploadSession | undefined, chunk: ChunkInput): void {
  if (chunk.range && chunk.length !== undefined && chunk.length !== chunk.range.end - chunk.range.start + 1) {
    throw new BlobUploadInvalidError('Content-Range does not match Content-Length', {
      contentLength: chunk.length,
      contentRange: `${chunk.range.start}-${chunk.range.end}`,
    });
  }
  if (session && chunk.range && chunk.range.start !== session.size) throw new RangeInvalidError(session.size);
}

/** The event of a blob push, mount or delete. */
/** Passes bytes through, failing (so storage rolls the append back) when the count is not `expected`. */
async function* countBytes(body: AsyncIterable<Buffer>, expected: number | undefined): AsyncIterable<Buffer> {
  let n = 0;
  try {
    for await (const c of body) {
      n += c.length;
      if (expected !== undefined && n > expected) throw new BlobUploadInvalidError('body longer than declared', { expected });
      yield c;
    }
  } catch (e) {
    if (e instanceof BlobUploadInvalidError) throw e;
    throw new BlobUploadInvalidError('the request body ended early', { expected, received: n });
  }
  if (expected !== undefined && n !== expected) {
    throw new BlobUploadInvalidError('the request body is shorter than declared', { expected, received: n });
  }
}

/**
 * Passes bytes through, failing (so storage rolls the append back) when the next chunk takes
 * longer than `ms` to arrive. Each wait races its own timer: racing one long-lived promise
 * instead would keep every chunk reachable until the append ends.
 */
async function* withIdleTimeout(body: AsyncIterable<Buffer>, ms: number): AsyncIterable<Buffer> {
  const iterator = body[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BlobUploadInvalidError(`no bytes of the body arrived for ${ms / 1000} s`)), ms);
      });
      try {
        const next = await Promise.race([iterator.next(), idle]);
        if (next.done) {
          finished = true;
          return;
        }
        yield next.value;
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    // A stalled source cannot finish a return() before its pending next() settles: do not wait.
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function isUuid(s: string): boolean {
  return UUID.test(s);
}
