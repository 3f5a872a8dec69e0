import { Inject, Injectable, Optional } from '@nestjs/common';
import { Counter } from 'prom-client';
import { annotateActiveSpan, untraced } from '@lading/contracts';
import { MetadataDb, type StoredManifest } from '@lading/metadata-db';

const lookups = new Counter({
  name: 'lading_manifest_cache_requests_total',
  help: 'Lookups in the in-process manifest cache (enabled only when this process is the database\'s sole writer), by result.',
  labelNames: ['result'] as const,
});

interface Entry {
  manifest: StoredManifest;
  generation: number;
}

const MAX_ENTRIES = 20_000;
const MAX_BYTES = 64 * 1024 * 1024;
/** Repositories whose write generation is remembered (the least recently written go first). */
export const MAX_GENERATIONS = 20_000;

/**
 * Keeps recently served manifests (by repository and tag or digest) in memory so the pull path
 * skips the database. It is exact only when this process is the database's only writer
 * (`MetadataDb.soleWriter`: the embedded PGlite, locked to this process), so it is enabled only
 * then. Every manifest or tag write through any store bumps that repository's generation (the
 * store layer reports it, before the write and after its commit), which invalidates all its entries.
 */
@Injectable()
export class ManifestCache {
  readonly enabled: boolean;
  private readonly entries = new Map<string, Entry>();
  /**
   * The generation of each recently written repository: the `tick` of its last write. Bounded:
   * one per repository ever written grew without end (every push to a new repository added one).
   * A repository not in it has the generation `floor`, the largest one ever dropped from it, so
   * a repository's generation never goes back and changes with every write: a dropped one's
   * entries are stale (its generation became `floor` ≥ its last tick), and a write gets a tick
   * above every generation observed before it.
   */
  private readonly generations = new Map<string, number>();
  private tick = 0;
  private floor = 0;
  private bytes = 0;

  private readonly maxGenerations: number;

  /** `maxGenerations`: for tests (Nest injects the database only). */
  constructor(@Inject(MetadataDb) db: Pick<MetadataDb, 'soleWriter' | 'onManifestsChanged'>, @Optional() maxGenerations?: number) {
    this.maxGenerations = maxGenerations ?? MAX_GENERATIONS;
    this.enabled = db.soleWriter;
    if (this.enabled) db.onManifestsChanged((repository) => this.invalidate(repository));
  }

  /** The cached manifest, if still valid; the active span (the operation's) gets `lading.cache.hit`. */
  get(name: string, reference: string): StoredManifest | undefined {
    if (!this.enabled) return undefined;
    const found = this.lookup(name, reference);
    // An attribute of the operation's span, not a span of its own: a lookup in a Map costs less
    // than the span would.
    if (!untraced()) annotateActiveSpan({ 'lading.cache.hit': found !== undefined });
    return found;
  }

  private lookup(name: string, reference: string): StoredManifest | undefined {
    const key = `${name}\u0000${reference}`;
    const e = this.entries.get(key);
    if (!e) {
      lookups.inc({ result: 'miss' });
      return undefined;
    }
    if (e.generation !== this.generation(name)) {
      this.remove(key, e);
      lookups.inc({ result: 'stale' });
      return undefined;
    }
    lookups.inc({ result: 'hit' });
    // Refresh recency (Map keeps insertion order: the first key is the least recently used).
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.manifest;
  }

  /**
   * Remembers a manifest read at `generation` (taken with {@link generation} before the read, so a
   * write that lands during the read makes this entry stale instead of wrong).
   */
  set(name: string, reference: string, manifest: StoredManifest, generation: number): void {
    if (!this.enabled || generation !== this.generation(name)) return;
    const key = `${name}\u0000${reference}`;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, { manifest, generation });
    this.bytes += manifest.payload.length;
    while (this.entries.size > MAX_ENTRIES || this.bytes > MAX_BYTES) {
      const [k, v] = this.entries.entries().next().value!;
      this.remove(k, v);
    }
  }

  /** The current generation of repository `name`. */
  generation(name: string): number {
    return this.generations.get(name) ?? this.floor;
  }

  /** Invalidates every entry of repository `name`. */
  invalidate(name: string): void {
    this.generations.delete(name);
    this.generations.set(name, ++this.tick);
    while (this.generations.size > this.maxGenerations) {
      const [oldest, generation] = this.generations.entries().next().value!;
      this.generations.delete(oldest);
      this.floor = Math.max(this.floor, generation);
    }
  }

  /** How many repositories' generations are kept (for tests). */
  get trackedRepositories(): number {
    return this.generations.size;
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.manifest.payload.length;
  }
}
