import { createHash, Hash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import type { DigestAlgorithm } from '@lading/reference';
import { assertSupportedAlgorithm } from './digest';

/**
 * Incremental digest over a sequence of chunks, for content that arrives in pieces (an upload's
 * PATCHes, a stream): `update()` as bytes arrive, `digest()` at any time for the canonical
 * `algorithm:hex` of everything so far (it does not finalise, so updating may continue),
 * `copy()` to fork the state (keep a checkpoint, try an append on the copy), `bytes` for the
 * running byte count. The constructor throws {@link DigestUnsupportedError} for an algorithm
 * other than sha256/sha512.
 */
export class Digester {
  private hash: Hash;
  private count = 0;

  /** Starts an empty digest with `algorithm` (sha256 by default). */
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    assertSupportedAlgorithm(algorithm);
    this.hash = createHash(algorithm);
  }

  /** Adds `chunk` to the digest; returns this digester. */
  update(chunk: Uint8Array): this {
    this.hash.update(chunk);
    this.count += chunk.byteLength;
    return this;
  }

  /** The digest, as `algorithm:hex`, of all bytes passed to `update()` so far. Non-destructive. */
  digest(): string {
    // Hash#copy() keeps the running state usable, so digest() can be asked for more than once.
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
  }

  /**
   * A new digester in the same state (same algorithm, bytes and count). Each goes on
   * independently: updating one does not change the other.
   */
  copy(): Digester {
    const twin = new Digester(this.algorithm);
    twin.hash = this.hash.copy();
    twin.count = this.count;
    return twin;
  }

  /** How many bytes have been passed to `update()`. */
  get bytes(): number {
    return this.count;
  }
}

/**
 * A pass-through stream that digests what flows through it. Bytes leave unchanged; after the
 * stream ends, `digest()` is the digest of the whole content and `bytes` its length.
 */
export class DigestStream extends Transform {
  private readonly digester: Digester;

  /** Creates the stream; throws {@link DigestUnsupportedError} for an unsupported algorithm. */
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.digester = new Digester(algorithm);
  }

  /** Digests `chunk` and passes it on unchanged. */
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    callback(null, chunk);
  }

  /** Digest, as `algorithm:hex`, of the bytes seen so far (of all of them once the stream ended). */
  digest(): string {
    return this.digester.digest();
  }

  /** Number of bytes that have passed through. */
  get bytes(): number {
    return this.digester.bytes;
  }
}

/**
 * Returns a {@link DigestStream}: a Transform that passes bytes through unchanged and exposes
 * `digest()` and `bytes`. Throws {@link DigestUnsupportedError} for an unsupported algorithm.
 */
export function createDigestStream(algorithm: DigestAlgorithm = 'sha256'): DigestStream {
  return new DigestStream(algorithm);
}
