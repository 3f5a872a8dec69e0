import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { MetadataDb } from '@lading/metadata-db';
import { LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { HashShadow } from './hash-shadow';
import { NativeSha256, type UploadHasher } from './upload-hasher';

const MAX_ENTRIES = 4096;

/**
 * Keeps the running sha256 of each upload that this process served last, so a chunked upload
 * that stays on one process is hashed exactly once, as its bytes stream (node:crypto). When
 * other processes share the database (the split deployment, any number of replicas), a hashing
 * worker shadows those bytes with a hash whose state can be saved: the state is recorded with the
 * session at the end of each append, and a chunk or PUT that lands on another process continues
 * from it. With the embedded database no other process can take a session, so there is no
 * shadow: a restart re-hashes the stored bytes once (so too with
 * `services.blobupload.hashcheckpoints: false`). Bounded: the oldest entries are dropped.
 */
@Injectable()
export class HashStateCache implements OnModuleDestroy {
  private readonly states = new Map<string, UploadHasher>();
  private readonly shadow: HashShadow | undefined;

  constructor(
    @Inject(MetadataDb) db: Pick<MetadataDb, 'soleWriter'>,
    @Inject(LADING_CONFIG) config: Pick<LadingConfig, 'services'>,
  ) {
    this.shadow = db.soleWriter || !config.services.blobupload.hashcheckpoints ? undefined : new HashShadow();
  }

  /** Whether appends record a hash checkpoint (other processes may continue the session). */
  get checkpoints(): boolean {
    return this.shadow !== undefined;
  }

  /**
   * A sha256 of an upload from its first byte, shadowed when checkpoints are on and `shadowed`
   * (false: no checkpoint of it will be asked for, so its bytes need no second hash in the worker).
   */
  fresh(shadowed = true): UploadHasher {
    return new NativeSha256(shadowed ? this.shadow?.open() : undefined);
  }

  /** The state for `id` if it covers exactly `offset` bytes; it is no longer kept (put it back). */
  take(id: string, offset: number): UploadHasher | undefined {
    const s = this.states.get(id);
    this.states.delete(id);
    if (s && s.bytes === offset) return s;
    s?.dispose();
    return undefined;
  }

  /** Remembers the state of `id` after a successful append. */
  put(id: string, state: UploadHasher): void {
    const previous = this.states.get(id);
    if (previous !== state) previous?.dispose();
    this.states.delete(id);
    this.states.set(id, state);
    if (this.states.size > MAX_ENTRIES) {
      const [oldest, hasher] = this.states.entries().next().value!;
      this.states.delete(oldest);
      hasher.dispose();
    }
  }

  /** Forgets `id`. */
  drop(id: string): void {
    this.states.get(id)?.dispose();
    this.states.delete(id);
  }

  async onModuleDestroy(): Promise<void> {
    await this.shadow?.close();
  }
}
