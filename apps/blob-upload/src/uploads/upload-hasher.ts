import { createSHA256, type IHasher } from 'hash-wasm';
import { Digester } from '@lading/manifest';
import type { HashCheckpoint } from '@lading/metadata-db';
import type { ShadowHandle } from './hash-shadow';

/**
 * The implementation tag of saved sha256 states: hash-wasm's state layout is its own and only
 * the same build can load it, so a state written by another version is ignored (re-hashed).
 * Must name the exact version pinned in package.json (a unit test checks).
 */
export const SHA256_STATE_IMPL = 'hash-wasm@4.13.0/sha256';

/** The running sha256 of an upload's recorded bytes, on this process. */
export interface UploadHasher {
  /** How many bytes it has hashed. */
  readonly bytes: number;
  update(chunk: Uint8Array): void;
  /** `sha256:<hex>` of the bytes so far; non-destructive. */
  digest(): string;
  /**
   * A saved state of the bytes so far, or of a prefix of them (a shadow that fell behind stopped
   * short), for another process to continue from; null when none can be had (no shadow, or it
   * failed): the session then keeps its older checkpoint.
   */
  checkpoint(): Promise<HashCheckpoint | null>;
  /** Frees what it holds besides memory (a shadow in the hashing worker). Idempotent. */
  dispose(): void;
}

/**
 * node:crypto's sha256 (about 8 times faster than hash-wasm here: the CPU's SHA instructions),
 * whose state cannot be saved; with a shadow, the same bytes are hashed again by hash-wasm in a
 * worker thread, off the request's path, to produce a checkpoint.
 */
export class NativeSha256 implements UploadHasher {
  private readonly digester = new Digester('sha256');

  constructor(private readonly shadow?: ShadowHandle) {}

  get bytes(): number {
    return this.digester.bytes;
  }

  update(chunk: Uint8Array): void {
    this.digester.update(chunk);
    this.shadow?.update(chunk);
  }

  digest(): string {
    return this.digester.digest();
  }

  async checkpoint(): Promise<HashCheckpoint | null> {
    const saved = await this.shadow?.save();
    return saved ? { impl: SHA256_STATE_IMPL, offset: saved.bytes, state: saved.state } : null;
  }

  dispose(): void {
    this.shadow?.close();
  }
}

let sharedWasm: Promise<IHasher> | undefined;

/**
 * One hash-wasm instance for every resumed session of the process: each keeps only its 116-byte
 * state and loads it for each chunk (an instance per session would hold its own WebAssembly
 * memory). Safe because JavaScript runs one update at a time.
 */
function wasm(): Promise<IHasher> {
  sharedWasm ??= createSHA256();
  return sharedWasm;
}

/**
 * hash-wasm's sha256, continued from a saved state: what a session uses on a process that did
 * not hash its first bytes. Slower than node:crypto, but its own state is the checkpoint.
 */
export class ResumedSha256 implements UploadHasher {
  private constructor(
    private readonly hasher: IHasher,
    private state: Uint8Array,
    private count: number,
  ) {}

  /** Continues from `checkpoint`; undefined when its implementation is not this build's. */
  static async resume(checkpoint: HashCheckpoint): Promise<ResumedSha256 | undefined> {
    if (checkpoint.impl !== SHA256_STATE_IMPL) return undefined;
    const hasher = await wasm();
    try {
      hasher.load(checkpoint.state);
    } catch {
      return undefined; // not a state this build wrote after all: re-hash instead
    }
    return new ResumedSha256(hasher, new Uint8Array(checkpoint.state), checkpoint.offset);
  }

  get bytes(): number {
    return this.count;
  }

  update(chunk: Uint8Array): void {
    this.hasher.load(this.state);
    this.hasher.update(chunk);
    this.state = this.hasher.save();
    this.count += chunk.byteLength;
  }

  digest(): string {
    this.hasher.load(this.state);
    return `sha256:${this.hasher.digest('hex')}`;
  }

  checkpoint(): Promise<HashCheckpoint | null> {
    return Promise.resolve({ impl: SHA256_STATE_IMPL, offset: this.count, state: Buffer.from(this.state) });
  }

  dispose(): void {
    // Nothing beyond memory.
  }
}
