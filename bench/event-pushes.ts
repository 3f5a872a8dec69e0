/**
 * Small image pushes for the events benchmark: each a config blob, one 1 KiB layer and an OCI
 * manifest pushed by tag (three push events), timed from the manifest PUT's 201, and the moment
 * each push's manifest event shows up somewhere (the topic, a webhook receiver).
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { RegistryEvent } from '@lading/contracts';
import { randomImage } from '@lading/testing';
import { OCI_MANIFEST, pushBlob, UnexpectedResponseError } from './oci-client';
import { WebhookReceiver } from '../test/support/webhook-receiver';

/** Push events per pushed image: config, layer, manifest. */
export const EVENTS_PER_PUSH = 3;

/** One pushed image: where, and when its manifest PUT answered 201 (performance.now()). */
export interface Push {
  repository: string;
  tag: string;
  acceptedAt: number;
}

/** `repository:tag` of a manifest push: how a push is matched with its event. */
export function pushKey(repository: string, tag: string): string {
  return `${repository}:${tag}`;
}

/** The key of a manifest push event (one with a tag), else undefined. */
export function manifestPushKey(e: RegistryEvent): string | undefined {
  return e.action === 'push' && e.target.tag ? pushKey(e.target.repository, e.target.tag) : undefined;
}

/** When each manifest push was first seen somewhere, by push key. */
export class Arrivals {
  readonly at = new Map<string, number>();

  see(e: RegistryEvent, at: number): void {
    const key = manifestPushKey(e);
    if (key && !this.at.has(key)) this.at.set(key, at);
  }

  /** Milliseconds from each push's 201 to its arrival; @throws naming how many never arrived. */
  latencies(pushes: readonly Push[], where: string): number[] {
    const missing = pushes.filter((p) => !this.at.has(pushKey(p.repository, p.tag)));
    if (missing.length > 0) throw new Error(`${missing.length} of ${pushes.length} manifest push events never reached ${where}`);
    return pushes.map((p) => this.at.get(pushKey(p.repository, p.tag))! - p.acceptedAt);
  }

  /** Waits until every push of `pushes` arrived. @throws after `ms`. */
  async waitFor(pushes: readonly Push[], ms: number, where: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (pushes.some((p) => !this.at.has(pushKey(p.repository, p.tag)))) {
      if (Date.now() > deadline) this.latencies(pushes, where);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A webhook receiver that notes when each manifest push event arrives. */
export async function startTimedReceiver(): Promise<{ receiver: WebhookReceiver; arrivals: Arrivals }> {
  const receiver = new WebhookReceiver();
  const arrivals = new Arrivals();
  receiver.answer = (res, n) => {
    const at = performance.now();
    for (const e of JSON.parse(receiver.posts[n - 1].body.toString()).events as RegistryEvent[]) arrivals.see(e, at);
    res.writeHead(200).end();
  };
  await receiver.start();
  return { receiver, arrivals };
}

/** Pushes one small image to `repository:tag`; returns when the manifest PUT answered 201. */
export async function pushSmallImage(pool: Pool, repository: string, tag: string): Promise<Push> {
  const image = randomImage({ layers: 1, layerSize: 1024 });
  for (const b of [image.config, ...image.layers]) await pushBlob(pool, repository, { digest: b.digest, size: b.size, body: b.bytes });
  const res = await pool.request({ method: 'PUT', path: `/v2/${repository}/manifests/${tag}`, headers: { 'content-type': OCI_MANIFEST }, body: image.manifest });
  const acceptedAt = performance.now();
  const body = await res.body.text();
  if (res.statusCode !== 201) throw new UnexpectedResponseError(`PUT manifest ${repository}:${tag}: expected 201, got ${res.statusCode}: ${body.slice(0, 300)}`);
  return { repository, tag, acceptedAt };
}

/**
 * `clients` concurrent pushers, each pushing small images one after the other to its own
 * `repositories` repositories in turn, until `seconds` have passed (a push under way finishes).
 * Returns every push and how long the load ran.
 */
export async function pushLoad(url: string, options: { clients: number; seconds: number; prefix: string; repositories?: number }): Promise<{ pushes: Push[]; seconds: number }> {
  const pool = new Pool(url, { connections: options.clients, pipelining: 1 });
  const pushes: Push[] = [];
  const t0 = performance.now();
  const end = t0 + options.seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: options.clients }, async (_, c) => {
        for (let i = 0; performance.now() < end; i++) {
          const repository = `${options.prefix}/c${c}-r${i % (options.repositories ?? 4)}`;
          pushes.push(await pushSmallImage(pool, repository, `t${i}`));
        }
      }),
    );
    return { pushes, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await pool.close();
  }
}

/** `count` pushes one after the other (one client), to `repositories` repositories in turn. */
export async function sequentialPushes(url: string, count: number, prefix: string, repositories = 4): Promise<Push[]> {
  const pool = new Pool(url, { connections: 1 });
  try {
    const pushes: Push[] = [];
    for (let i = 0; i < count; i++) pushes.push(await pushSmallImage(pool, `${prefix}/r${i % repositories}`, `t${i}`));
    return pushes;
  } finally {
    await pool.close();
  }
}
