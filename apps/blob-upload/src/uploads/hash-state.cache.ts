import { createHash, type Hash } from 'node:crypto';
import { Injectable } from '@nestjs/common';

/** A running sha256 over the first `offset` bytes of an upload. */
export interface HashState {
  hash: Hash;
  offset: number;
}

const MAX_ENTRIES = 4096;

/**
 * Keeps the running hash of each upload that this process served last, so a chunked upload that
 * stays on one process is hashed exactly once, as its bytes stream. `node:crypto` state cannot be
 * saved, so when a chunk arrives at another process (or after a restart) the caller re-hashes
 * the stored bytes once and continues from there. Bounded: the oldest entries are dropped.
 */
@Injectable()
export class HashStateCache {
  private readonly states = new Map<string, HashState>();

  /** The state for `id` if it covers exactly `offset` bytes. */
  take(id: string, offset: number): HashState | undefined {
    const s = this.states.get(id);
    this.states.delete(id);
    return s && s.offset === offset ? s : undefined;
  }

  /** Remembers the state of `id` after a successful append. */
  put(id: string, state: HashState): void {
    this.states.delete(id);
    this.states.set(id, state);
    if (this.states.size > MAX_ENTRIES) this.states.delete(this.states.keys().next().value!);
  }

  /** Forgets `id`. */
  drop(id: string): void {
    this.states.delete(id);
  }

  /** A fresh sha256. */
  static fresh(): HashState {
    return { hash: createHash('sha256'), offset: 0 };
  }
}
