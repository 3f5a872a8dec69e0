import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envelopeFields, type RegistryEvent } from '@lading/contracts';
import { randomImage } from './images';
import type { RegistryTestClient } from './registry-client';

/** The events Distribution 2.8.2 sent for a push, a pull and deletes (shared/fixtures, copied into libs/metadata-db). */
export function distributionEvents(): RegistryEvent[] {
  return readFileSync(join(__dirname, '../../metadata-db/src/fixtures/distribution-2.8.2-events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => (JSON.parse(l) as { body: { events: RegistryEvent[] } }).body.events);
}

/** `push blob`, `pull manifest`, `mount blob`, `delete digest`, `delete tag`…: what an event is about. */
export function eventKind(e: RegistryEvent): string {
  if (e.action === 'delete') return e.target.tag !== undefined ? 'delete tag' : 'delete digest';
  return `${e.action} ${e.target.mediaType === 'application/octet-stream' ? 'blob' : 'manifest'}`;
}

/**
 * The field paths and JSON types, sorted, that Distribution gives an event of `e`'s kind: those
 * of the captured event of that kind; for a mount (not captured) a blob push's plus
 * `target.fromRepository`, as its notifications bridge builds it; a manifest addressed by
 * digest carries no `target.tag`.
 * @throws when the fixture has no event to derive `e`'s kind from.
 */
export function distributionFieldsFor(e: RegistryEvent): string[] {
  const kind = eventKind(e);
  const base = kind === 'mount blob' ? 'push blob' : kind;
  const captured = distributionEvents().find((c) => eventKind(c) === base);
  if (!captured) throw new Error(`the fixture has no ${base} event`);
  const fields = envelopeFields(captured).filter((f) => e.target.tag !== undefined || !f.startsWith('target.tag:'));
  if (kind === 'mount blob') fields.push('target.fromRepository: string');
  return fields.sort();
}

/** One event a scenario expects: what happened to what, in which repository. */
export interface ExpectedEvent {
  repository: string;
  action: RegistryEvent['action'];
  kind: string;
  digest?: string;
  tag?: string;
  fromRepository?: string;
}

/**
 * Drives every kind of event through a registry, in `prefix/app` and `prefix/mirror`: a push
 * (three blobs, then a manifest tagged v1), a pull of the manifest by tag and of a layer (and
 * HEADs of both, which are no pulls), a mount of the layer into the mirror, then deletes of the
 * tag, the manifest by digest and a blob. Returns the events it should cause, in order.
 * @throws when the registry answers a step with an unexpected status.
 */
export async function runEventScenario(client: RegistryTestClient, prefix: string): Promise<ExpectedEvent[]> {
  const app = `${prefix}/app`;
  const mirror = `${prefix}/mirror`;
  const image = randomImage({ layers: 2, layerSize: 2048 });
  const [layer, other] = image.layers;
  const expect = async (what: string, call: Promise<{ status: number; body: Buffer }>, status: number) => {
    const r = await call;
    if (r.status !== status) throw new Error(`event scenario: ${what} answered ${r.status} ${r.body.toString().slice(0, 200)}`);
  };
  await expect('push', client.pushImage(app, image, 'v1'), 201);
  await expect('manifest GET', client.call('GET', `/v2/${app}/manifests/v1`, { headers: { accept: image.mediaType } }), 200);
  await expect('manifest HEAD', client.call('HEAD', `/v2/${app}/manifests/v1`, { headers: { accept: image.mediaType } }), 200);
  await expect('blob GET', client.call('GET', `/v2/${app}/blobs/${layer.digest}`), 200);
  await expect('blob HEAD', client.call('HEAD', `/v2/${app}/blobs/${layer.digest}`), 200);
  await expect('mount', client.call('POST', `/v2/${mirror}/blobs/uploads/?mount=${layer.digest}&from=${app}`), 201);
  await expect('tag delete', client.call('DELETE', `/v2/${app}/manifests/v1`), 202);
  await expect('manifest delete', client.call('DELETE', `/v2/${app}/manifests/${image.digest}`), 202);
  await expect('blob delete', client.call('DELETE', `/v2/${app}/blobs/${other.digest}`), 202);
  const blob = (action: 'push' | 'pull', digest: string): ExpectedEvent => ({ repository: app, action, kind: `${action} blob`, digest });
  return [
    ...[image.config, ...image.layers].map((b) => blob('push', b.digest)),
    { repository: app, action: 'push', kind: 'push manifest', digest: image.digest, tag: 'v1' },
    { repository: app, action: 'pull', kind: 'pull manifest', digest: image.digest, tag: 'v1' },
    blob('pull', layer.digest),
    { repository: mirror, action: 'mount', kind: 'mount blob', digest: layer.digest, fromRepository: app },
    { repository: app, action: 'delete', kind: 'delete tag', tag: 'v1' },
    { repository: app, action: 'delete', kind: 'delete digest', digest: image.digest },
    { repository: app, action: 'delete', kind: 'delete digest', digest: other.digest },
  ];
}

/**
 * What is wrong with `received` (events of a {@link runEventScenario}, first occurrences, as
 * they arrived) against `expected`: a missing or extra event, a field set that is not
 * Distribution's, or an order that differs within a repository. Pulls are checked among
 * themselves only: they are written in batches off the pull path, so they may trail a later push
 * or delete.
 * @returns one line per problem; empty when all is well.
 */
export function scenarioProblems(received: readonly RegistryEvent[], expected: readonly ExpectedEvent[]): string[] {
  const problems: string[] = [];
  const key = (e: { repository: string; action: string; digest?: string; tag?: string }) =>
    `${e.repository} ${e.action} ${e.action === 'delete' && e.tag !== undefined ? `tag ${e.tag}` : e.digest}`;
  const got = received.map((e) => ({ e, k: key({ ...e.target, action: e.action }) }));
  for (const x of expected) {
    const match = got.find((g) => g.k === key(x));
    if (!match) {
      problems.push(`missing: ${key(x)}`);
      continue;
    }
    const e = match.e;
    if (eventKind(e) !== x.kind) problems.push(`${key(x)}: kind ${eventKind(e)}, expected ${x.kind}`);
    if (x.tag !== undefined && e.target.tag !== x.tag) problems.push(`${key(x)}: tag ${e.target.tag}`);
    if (e.target.fromRepository !== x.fromRepository) problems.push(`${key(x)}: fromRepository ${e.target.fromRepository}`);
    const fields = envelopeFields(e).sort();
    const want = distributionFieldsFor(e);
    if (fields.join() !== want.join()) problems.push(`${key(x)}: fields ${fields.join(', ')}; Distribution's: ${want.join(', ')}`);
  }
  const wanted = new Set(expected.map(key));
  for (const g of got) if (!wanted.has(g.k)) problems.push(`unexpected: ${g.k}`);
  // Order is per repository (Kafka keeps it per key); pulls among themselves.
  for (const repository of new Set(expected.map((x) => x.repository))) {
    for (const pulls of [false, true]) {
      const order = (keys: string[]) => keys.filter((k) => wanted.has(k) && k.startsWith(`${repository} `) && k.includes(' pull ') === pulls);
      const arrived = order(got.map((g) => g.k));
      if (arrived.join('\n') !== order(expected.map(key)).join('\n')) {
        problems.push(`${repository}: ${pulls ? 'pulls' : 'pushes, mounts, deletes'} out of order: ${arrived.join(' | ')}`);
      }
    }
  }
  return problems;
}
