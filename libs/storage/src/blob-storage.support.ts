/*
 * What every driver shares, so that key checks, range semantics and the way an append reads
 * its source cannot drift between drivers. Internal to this lib, but for what index exports
 * (`KeyedSerializer`, `sendBlob`).
 */
import { isValidDigest, parseDigest, type DigestAlgorithm } from '@lading/reference';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobInfo, ByteRange, SendableBlobStream, UploadPart } from './blob-storage.port';
import { InvalidStorageKeyError, RangeNotSatisfiableError } from './storage.error';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A canonical blob digest split into its parts. */
export interface BlobKey {
  algorithm: DigestAlgorithm;
  hex: string;
}

/**
 * Parses a canonical digest (`sha256:<64 hex>` or `sha512:<128 hex>`, lowercase), the digests
 * `@lading/reference`'s one parser accepts.
 * @throws InvalidStorageKeyError for anything else.
 */
export function parseBlobDigest(digest: string): BlobKey {
  if (!isValidDigest(digest)) {
    throw new InvalidStorageKeyError('digest', String(digest));
  }
  const { algorithm, encoded } = parseDigest(digest);
  return { algorithm, hex: encoded };
}

/** Whether `digest` is a canonical blob digest. */
export function isBlobDigest(digest: string): boolean {
  return isValidDigest(digest);
}

/**
 * Checks that `id` is a lowercase uuid and returns it.
 * @throws InvalidStorageKeyError otherwise.
 */
export function checkUploadId(id: string): string {
  if (typeof id !== 'string' || !UPLOAD_ID.test(id)) {
    throw new InvalidStorageKeyError('uploadId', String(id));
  }
  return id;
}

/** The digests of a blob listing, in its order (every driver's `listBlobs`). */
export async function* digestsOf(blobs: AsyncIterable<BlobInfo>): AsyncIterable<string> {
  for await (const blob of blobs) yield blob.digest;
}

/** Whether `id` is a lowercase uuid. */
export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/**
 * The inclusive bounds to read from `size` bytes: the whole content without a range (`end` is
 * `start - 1` when it is empty), else `range` with `end` clamped to the last byte.
 * @throws RangeNotSatisfiableError when a bound is not a non-negative safe integer, `end` is
 *   before `start`, or `start` is at or past `size`.
 */
export function resolveByteRange(range: ByteRange | undefined, size: number): ByteRange {
  if (range === undefined) {
    return { start: 0, end: size - 1 };
  }
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || start >= size) {
    throw new RangeNotSatisfiableError({ start, end }, size);
  }
  return { start, end: Math.min(end, size - 1) };
}

/**
 * Runs operations on the same key one after the other, in call order; different keys run
 * concurrently. Keys are forgotten once idle, so memory follows the number of busy keys.
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task for `key` has settled; settles as `task` does. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.tails.get(key) === tail) {
        this.tails.delete(key);
      }
    }
  }
}

/**
 * Iterates an append's source as Buffers (a Uint8Array is viewed, not copied), one chunk at a
 * time so memory stays bounded. Aborting `signal` rejects at once, even while the source is
 * waiting for bytes. When iteration stops early (abort, a consumer error) the source is closed
 * with `return()` without waiting for it, since a stalled source may never answer.
 * @throws the source's error, `signal.reason` when aborted, or a TypeError for a chunk that is
 *   not a Uint8Array.
 */
export async function* readAppendSource(
  source: AsyncIterable<Buffer | Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<Buffer, void, undefined> {
  signal?.throwIfAborted();
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      const result = signal ? await nextOrAbort(iterator, signal) : await iterator.next();
      if (result.done) {
        exhausted = true;
        return;
      }
      yield toBuffer(result.value);
    }
  } finally {
    if (!exhausted && iterator.return) {
      Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => undefined);
    }
  }
}

/**
 * The iterator's next result, or a rejection with `signal.reason` as soon as it aborts. Each wait
 * races a promise of its own: racing one long-lived abort promise instead would attach a reaction
 * per chunk to it and keep every chunk reachable until the append ends.
 */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    iterator.next().then(
      (r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) {
    return chunk;
  }
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw new TypeError(`append source yielded ${typeof chunk}, expected Buffer or Uint8Array`);
}

/** The total size of `parts`. */
export function sizeOfParts(parts: readonly UploadPart[]): number {
  return parts.reduce((n, p) => n + p.size, 0);
}

/**
 * How a write after `parts` goes: the parts it keeps, and the staged last part (smaller than
 * `minPartSize`) whose bytes the new part must begin with, if any.
 */
export function planPartWrite(parts: readonly UploadPart[], minPartSize: number): { keep: UploadPart[]; staged?: UploadPart } {
  const last = parts[parts.length - 1];
  if (last && minPartSize > 0 && last.size < minPartSize) return { keep: parts.slice(0, -1), staged: last };
  return { keep: [...parts] };
}

/** One part's share of a ranged read over several parts. */
export interface PartSlice {
  part: UploadPart;
  /** Inclusive bounds within the part. */
  start: number;
  end: number;
}

/**
 * The slices of `parts` that the inclusive `bounds` (already resolved against their total size)
 * cover, in order; empty parts and parts outside the bounds are left out.
 */
export function slicesOf(parts: readonly UploadPart[], bounds: ByteRange): PartSlice[] {
  const slices: PartSlice[] = [];
  let offset = 0;
  for (const part of parts) {
    const first = Math.max(bounds.start, offset);
    const last = Math.min(bounds.end, offset + part.size - 1);
    if (first <= last) slices.push({ part, start: first - offset, end: last - offset });
    offset += part.size;
  }
  return slices;
}

/**
 * One stream of the streams `open` makes, opened one after the other as the previous one ends,
 * so at most one resource is held at a time. Destroying the result destroys the open one.
 */
export function concatStreams(openers: ReadonlyArray<() => Promise<Readable>>): Readable {
  let current: Readable | undefined;
  async function* generate(): AsyncGenerator<Buffer> {
    for (const open of openers) {
      current = await open();
      try {
        for await (const chunk of current) yield chunk as Buffer;
      } finally {
        current.destroy();
        current = undefined;
      }
    }
  }
  const out = Readable.from(generate(), { objectMode: false });
  out.once('close', () => current?.destroy());
  return out;
}

/**
 * Yields the staged part's bytes (not passed to `onData`: they were hashed when they arrived)
 * and then the source's, calling `onData` with each of the source's chunks as it passes.
 */
export async function* withStagedBytes(
  staged: AsyncIterable<Buffer> | undefined,
  source: AsyncIterable<Buffer | Uint8Array>,
  options: { onData?: (chunk: Buffer) => void; signal?: AbortSignal },
): AsyncGenerator<Buffer, void, undefined> {
  if (staged) for await (const chunk of staged) yield chunk;
  for await (const chunk of readAppendSource(source, options.signal)) {
    options.onData?.(chunk);
    yield chunk;
  }
}

/** Whether `stream` is a `SendableBlobStream`. */
export function isSendableBlobStream(stream: Readable): stream is SendableBlobStream {
  return typeof (stream as Partial<SendableBlobStream>).sendTo === 'function';
}

/**
 * Writes the blob stream `stream` (from `readBlob`) to `target` and ends it: with the stream's
 * own `sendTo` when it has one, else `pipeline(stream, target)`. Either way `target` is
 * destroyed on failure and the stream is destroyed when it settles.
 */
export function sendBlob(stream: Readable, target: Writable): Promise<void> {
  return isSendableBlobStream(stream) ? stream.sendTo(target) : pipeline(stream, target);
}
