import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  BlobUploadInvalidError,
  BlobUploadUnknownError,
  DigestInvalidError,
  RangeInvalidError,
  type RequestContext,
} from '@lading/contracts';
import { parseDigest } from '@lading/manifest';
import { BLOB_STORAGE } from '@lading/nest-common';
import { KeyedSerializer, UploadNotFoundError, UploadOffsetMismatchError, type BlobStorage } from '@lading/storage';
import { BlobRepository } from '../blobs/blob.repository';
import { HashStateCache, type HashState } from './hash-state.cache';
import { UploadRepository, type UploadSession } from './upload.repository';

/**
 * How long an append waits for the next bytes of its body before it gives up (400, its bytes
 * truncated away). Besides freeing the session from a client that went silent (the HTTP server
 * has no body timeout, so large uploads can take long), it bounds how long a live append leaves
 * its bytes unchanged, which is what tells another process a dead append's leftovers apart.
 */
export const APPEND_IDLE_TIMEOUT_MS = 30_000;

/**
 * Bytes past a session's committed size that have not changed for this long were left by an
 * append whose process died (a live one would have written or given up by now); younger ones
 * may belong to an append still running in another process, and are left alone. The margin
 * over the idle timeout covers a last write still in flight and clock skew between hosts that
 * share the storage.
 */
export const STRAY_TAIL_AGE_MS = APPEND_IDLE_TIMEOUT_MS + 15_000;

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

/**
 * Upload sessions: start, append (chunked or streamed), status, complete, cancel, and
 * cross-repository mount. Bytes are hashed while they stream into storage; a blob becomes visible
 * in the repository only after its digest is verified and its bytes are committed.
 */
@Injectable()
export class UploadService {
  private readonly locks = new KeyedSerializer();

  constructor(
    private readonly uploads: UploadRepository,
    private readonly blobs: BlobRepository,
    private readonly hashes: HashStateCache,
    @Inject(BLOB_STORAGE) private readonly storage: BlobStorage,
  ) {}

  /** Opens a session in repository `name`. */
  async startUpload(name: string): Promise<UploadSession> {
    const id = randomUUID();
    await this.storage.createUpload(id);
    await this.uploads.insertSession(id, name);
    return { id, repository: name, size: 0, createdAt: new Date(), updatedAt: new Date() };
  }

  /** The session, or BLOB_UPLOAD_UNKNOWN. */
  async getUpload(name: string, id: string): Promise<UploadSession> {
    const session = isUuid(id) ? await this.uploads.findSession(name, id) : undefined;
    if (!session) throw new BlobUploadUnknownError(id);
    return session;
  }

  /** Appends a chunk at the session's end; a chunk that starts elsewhere is RANGE_INVALID (416). */
  async appendChunk(name: string, id: string, chunk: ChunkInput): Promise<UploadSession> {
    return this.locks.run(id, async () => {
      const session = await this.getUpload(name, id);
      session.size = await this.appendLocked(session, chunk);
      return session;
    });
  }

  /** Appends an optional last chunk, verifies `digest` and makes the blob visible in `name`. */
  async completeUpload(
    name: string,
    id: string,
    digest: string,
    chunk: ChunkInput | undefined,
    request: RequestContext,
    url: (digest: string) => string,
  ): Promise<CompletedBlob> {
    const wanted = parseDigest(digest).toString();
    return this.locks.run(id, async () => {
      const session = await this.getUpload(name, id);
      if (chunk) session.size = await this.appendLocked(session, chunk);
      const stored = await this.dropStrayTail(session);
      if (stored === null) {
        // A previous attempt committed the bytes but died before the database knew: finish it.
        const blob = await this.storage.statBlob(wanted);
        if (!blob || blob.size !== session.size) throw new BlobUploadUnknownError(id);
      } else {
        const actual = await this.digestOf(session, wanted.slice(0, wanted.indexOf(':')));
        if (actual !== wanted) throw new DigestInvalidError(undefined, { expected: wanted, actual });
        await this.storage.commitUpload(id, wanted).catch((e) => {
          throw e instanceof UploadNotFoundError ? new BlobUploadUnknownError(id) : e;
        });
      }
      await this.blobs.linkBlob(name, { digest: wanted, size: session.size }, request, {
        action: 'push',
        url: url(wanted),
        extra: async (m) => {
          await this.uploads.deleteSession(id, m);
        },
      });
      this.hashes.drop(id);
      return { digest: wanted, size: session.size };
    });
  }

  /**
   * The single-request upload (`POST ?digest=` with the body): no session row is written, the
   * bytes go to a private upload area and are committed once verified.
   */
  async pushMonolithic(
    name: string,
    digest: string,
    chunk: ChunkInput,
    request: RequestContext,
    url: (digest: string) => string,
  ): Promise<CompletedBlob> {
    const wanted = parseDigest(digest).toString();
    const id = randomUUID();
    await this.storage.createUpload(id);
    try {
      const state = HashStateCache.fresh();
      const size = await this.writeChunk(id, 0, chunk, state);
      const actual =
        wanted.startsWith('sha256:') ? `sha256:${state.hash.digest('hex')}` : await this.rehash(id, size, 'sha512');
      if (actual !== wanted) throw new DigestInvalidError(undefined, { expected: wanted, actual });
      await this.storage.commitUpload(id, wanted);
      await this.blobs.linkBlob(name, { digest: wanted, size }, request, { action: 'push', url: url(wanted) });
      return { digest: wanted, size };
    } finally {
      await this.storage.deleteUpload(id).catch(() => undefined);
    }
  }

  /** Abandons the session and its bytes. */
  async cancelUpload(name: string, id: string): Promise<void> {
    await this.locks.run(id, async () => {
      await this.getUpload(name, id);
      await this.uploads.deleteSession(id);
      this.hashes.drop(id);
      await this.storage.deleteUpload(id);
    });
  }

  /**
   * Links blob `digest` of repository `from` into `name` without moving bytes. False (and no
   * change) when `from` does not have it, so the caller falls back to a normal upload.
   */
  async mountBlob(name: string, from: string, digest: string, request: RequestContext, url: string): Promise<boolean> {
    const blob = await this.blobs.findLinked(from, digest);
    if (!blob) return false;
    await this.blobs.linkBlob(name, blob, request, { action: 'mount', fromRepository: from, url });
    return true;
  }

  private async appendLocked(session: UploadSession, chunk: ChunkInput): Promise<number> {
    if (chunk.range && chunk.range.start !== session.size) throw new RangeInvalidError(session.size);
    await this.dropStrayTail(session);
    const state = this.hashes.take(session.id, session.size) ?? (await this.resumeHash(session));
    const size = await this.writeChunk(session.id, session.size, chunk, state).catch(async (e) => {
      if (e instanceof UploadOffsetMismatchError) throw new RangeInvalidError(session.size);
      if (e instanceof UploadNotFoundError) throw new BlobUploadUnknownError(session.id);
      throw e;
    });
    if (!(await this.uploads.advanceSize(session.id, session.size, size))) {
      // Another process appended meanwhile: our bytes lost the race and the client must resync.
      throw new RangeInvalidError(session.size);
    }
    this.hashes.put(session.id, state);
    return size;
  }

  /**
   * Makes the stored upload hold exactly the session's committed bytes and returns its size
   * (null when the bytes are gone: a commit that the database never heard of). Bytes past the
   * committed size come from an append that has not advanced the session: either it died (a
   * crash, kill -9) before it could truncate them away, and then they are cut here once they
   * are STRAY_TAIL_AGE_MS old, or it is still running in another process (a client sending two
   * requests to one session at once), and then they must not be touched, because the running
   * append would go on writing into whatever follows: RANGE_INVALID, try again later. Left in
   * place, a dead append's bytes would make every resumed PATCH fail and be committed along
   * with the blob.
   */
  private async dropStrayTail(session: UploadSession): Promise<number | null> {
    const stored = await this.storage.uploadSize(session.id);
    if (stored === null || stored === session.size) return stored;
    if (stored < session.size) {
      // Appends sync before the size advances, so this is lost data, not bad input.
      throw new Error(`upload ${session.id} holds ${stored} bytes but ${session.size} are committed`);
    }
    const size = await this.storage.truncateUpload(session.id, session.size, { unchangedFor: STRAY_TAIL_AGE_MS }).catch((e) => {
      throw e instanceof UploadNotFoundError ? new BlobUploadUnknownError(session.id) : e;
    });
    if (size !== session.size) {
      throw new RangeInvalidError(session.size, {
        size: session.size,
        reason: `bytes past the committed size are still being written, or were written less than ${STRAY_TAIL_AGE_MS / 1000} s ago by a request that died; retry later`,
      });
    }
    return size;
  }

  /** Streams `chunk` into upload `id` at `offset`, hashing as it goes; checks the declared lengths. */
  private async writeChunk(id: string, offset: number, chunk: ChunkInput, state: HashState): Promise<number> {
    const expected = chunk.range ? chunk.range.end - chunk.range.start + 1 : chunk.length;
    if (chunk.range && chunk.length !== undefined && chunk.length !== expected) {
      throw new RangeInvalidError(offset, { reason: 'Content-Range does not match Content-Length' });
    }
    const body = withIdleTimeout(countBytes(chunk.body, expected), APPEND_IDLE_TIMEOUT_MS);
    const size = await this.storage.appendUpload(id, offset, body, { onData: (c) => state.hash.update(c) });
    state.offset = size;
    return size;
  }

  private async resumeHash(session: UploadSession): Promise<HashState> {
    const state = HashStateCache.fresh();
    if (session.size > 0) {
      const stream = await this.storage.readUpload(session.id, { start: 0, end: session.size - 1 });
      for await (const c of stream) state.hash.update(c as Buffer);
    }
    state.offset = session.size;
    return state;
  }

  private async digestOf(session: UploadSession, algorithm: string): Promise<string> {
    if (algorithm === 'sha256') {
      const state = this.hashes.take(session.id, session.size) ?? (await this.resumeHash(session));
      this.hashes.put(session.id, state);
      return `sha256:${state.hash.copy().digest('hex')}`;
    }
    return this.rehash(session.id, session.size, algorithm);
  }

  private async rehash(id: string, size: number, algorithm: string): Promise<string> {
    const hash = createHash(algorithm);
    if (size > 0) for await (const c of await this.storage.readUpload(id, { start: 0, end: size - 1 })) hash.update(c as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }
}

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
