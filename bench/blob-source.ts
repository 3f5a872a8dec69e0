/**
 * Blob bodies of any size without holding them in memory: one random block repeated, with a
 * unique nonce written into the last block so every blob has its own digest. The digest of the
 * shared prefix is hashed once per length and reused (`Hash.copy()`), so a new 1 GiB blob costs
 * hashing one block, not a gigabyte.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { BlobBody } from './oci-client';
import { MiB } from './stats';

/** A blob the source can stream again: its size, digest and what makes it unique. */
export interface BlobSpec {
  size: number;
  digest: string;
  nonce: Buffer;
}

const NONCE_BYTES = 16;

/** Makes and streams blobs of repeated random blocks. */
export class BlobSource {
  private readonly block: Buffer;
  private readonly prefixHashes = new Map<number, Hash>();

  constructor(blockSize = MiB) {
    this.block = randomBytes(blockSize);
  }

  /** A new blob of `size` bytes (> 0) with its sha256 digest. */
  create(size: number): BlobSpec {
    if (!(size > 0)) throw new Error(`blob size must be positive, got ${size}`);
    const nonce = randomBytes(NONCE_BYTES);
    const { fullBlocks, last } = this.layout(size, nonce);
    const hash = this.prefixHash(fullBlocks).copy().update(last);
    return { size, digest: `sha256:${hash.digest('hex')}`, nonce };
  }

  /** The blob's bytes, in block-sized chunks (the same Buffer repeated; never mutated). */
  async *chunks(spec: BlobSpec): AsyncIterable<Buffer> {
    const { fullBlocks, last } = this.layout(spec.size, spec.nonce);
    for (let i = 0; i < fullBlocks; i++) yield this.block;
    yield last;
  }

  /** The blob as a push body, streamed. */
  body(spec: BlobSpec): BlobBody {
    return { digest: spec.digest, size: spec.size, body: this.chunks(spec) };
  }

  /** Whole blocks before the last (partial or whole) block, and that last block with the nonce. */
  private layout(size: number, nonce: Buffer): { fullBlocks: number; last: Buffer } {
    const fullBlocks = Math.floor((size - 1) / this.block.length);
    const last = Buffer.from(this.block.subarray(0, size - fullBlocks * this.block.length));
    nonce.copy(last, 0, 0, Math.min(nonce.length, last.length));
    return { fullBlocks, last };
  }

  private prefixHash(blocks: number): Hash {
    let hash = this.prefixHashes.get(blocks);
    if (!hash) {
      hash = createHash('sha256');
      for (let i = 0; i < blocks; i++) hash.update(this.block);
      this.prefixHashes.set(blocks, hash);
    }
    return hash;
  }
}
