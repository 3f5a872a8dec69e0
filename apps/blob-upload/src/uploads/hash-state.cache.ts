import { Injectable } from '@nestjs/common';
import { Digester } from '@lading/manifest';

const MAX_ENTRIES = 4096;

/**
 * Keeps the running sha256 of each upload that this process served last, so a chunked upload
 * that stays on one process is hashed exactly once, as its bytes stream. The hash state cannot
 * be saved, so when a chunk arrives at another process (or after a restart) the caller re-hashes
 * the stored bytes once and continues from there. Bounded: the oldest entries are dropped.
 */
@Injectable()
export class HashStateCache {
  private readonly states = new Map<string, Digester>();

  /** The state for `id` if it covers exactly `offset` bytes. */
  take(id: string, offset: number): Digester | undefined {
    const s = this.states.get(id);
    this.states.delete(id);
    return s && s.bytes === offset ? s : undefined;
  }

  /** Remembers the state of `id` after a successful append. */
  put(id: string, state: Digester): void {
    this.states.delete(id);
    this.states.set(id, state);
    if (this.states.size > MAX_ENTRIES) this.states.delete(this.states.keys().next().value!);
  }

  /** Forgets `id`. */
  drop(id: string): void {
    this.states.delete(id);
  }
}
