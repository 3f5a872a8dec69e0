import { Inject, Injectable } from '@nestjs/common';
import { LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import type { StoredManifest } from './manifest.repository';

interface Entry {
  manifest: StoredManifest;
  generation: number;
}

const MAX_ENTRIES = 20_000;
const MAX_BYTES = 64 * 1024 * 1024;

/**
 * Keeps recently served manifests (by repository and tag or digest) in memory so the pull path
 * skips the database. It is exact only when this process is the registry's only writer — the
 * embedded default, where PGlite's lock guarantees one process — so it is enabled only then. Every
 * write to a repository bumps that repository's generation, which invalidates all its entries.
 */
@Injectable()
export class ManifestCache {
  readonly enabled: boolean;
  private readonly entries = new Map<string, Entry>();
  private readonly generations = new Map<string, number>();
  private bytes = 0;

  constructor(@Inject(LADING_CONFIG) config: LadingConfig) {
    this.enabled = config.database.url === undefined;
  }

  /** The cached manifest, if still valid. */
  get(name: string, reference: string): StoredManifest | undefined {
    if (!this.enabled) return undefined;
    const key = `${name}\u0000${reference}`;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.generation !== (this.generations.get(name) ?? 0)) {
      this.remove(key, e);
      return undefined;
    }
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
    if (!this.enabled || generation !== (this.generations.get(name) ?? 0)) return;
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
    return this.generations.get(name) ?? 0;
  }

  /** Invalidates every entry of repository `name`; call on any manifest or tag write. */
  invalidate(name: string): void {
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.manifest.payload.length;
  }
}
