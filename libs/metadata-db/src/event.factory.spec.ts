import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemScope, type RegistryEvent, type RequestScope } from '@lading/contracts';
import { buildRegistryEvent, type RegistryEventInput } from './event.factory';

/** Events Distribution 2.8.2 sent for a push, a pull and deletes (captured from its webhook). */
const reference: RegistryEvent[] = readFileSync(join(__dirname, 'fixtures/distribution-2.8.2-events.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .flatMap((l) => (JSON.parse(l) as { body: { events: RegistryEvent[] } }).body.events);

/** Every field path of a value with the JSON type found there, e.g. `target.size: number`. */
function shape(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [`${path}: ${value === null ? 'null' : typeof value}`];
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [`${path}: {}`];
  return entries.flatMap(([k, v]) => shape(v, path ? `${path}.${k}` : k)).sort();
}

const scope: RequestScope = {
  ...systemScope('manifest.put', 'demo/app', '6d46a218-9f75-4537-a5ab-27854000b872'),
  client: { addr: '127.0.0.1:42214', host: '127.0.0.1:5055', method: 'PUT', useragent: 'skopeo/1.9.3' },
};
const source = { addr: 'vm:5055', instanceID: '0c7c5714-bfdb-4917-95a5-e819bc78f746' };
const digest = 'sha256:c245b6c2467a1c00123cc7d88d9ab2e494c837d3c528459bdc55a553e4fb84f6';
const url = `http://127.0.0.1:5055/v2/demo/app/blobs/${digest}`;

/** What Lading's writers pass for each kind of event the fixture holds. */
const ours: Record<string, RegistryEventInput> = {
  'push blob': { action: 'push', repository: 'demo/app', target: { mediaType: 'application/octet-stream', digest, size: 5, length: 5, url } },
  'push manifest': {
    action: 'push',
    repository: 'demo/app',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 5, length: 5, url, tag: 'v1' },
  },
  'pull blob': { action: 'pull', repository: 'demo/app', target: { mediaType: 'application/octet-stream', digest, size: 5, length: 5, url } },
  'pull manifest': {
    action: 'pull',
    repository: 'demo/app',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 5, length: 5, url, tag: 'v1' },
  },
  // Writers pass what they know; the factory keeps what Distribution sends for a delete.
  'delete digest': { action: 'delete', repository: 'demo/app', target: { digest, mediaType: 'application/octet-stream', size: 5, length: 5, url } },
  'delete tag': { action: 'delete', repository: 'demo/app', target: { tag: 'v1', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' } },
};

function kindOf(e: RegistryEvent): string {
  if (e.action === 'delete') return e.target.tag !== undefined ? 'delete tag' : 'delete digest';
  return `${e.action} ${e.target.mediaType === 'application/octet-stream' ? 'blob' : 'manifest'}`;
}

describe('buildRegistryEvent', () => {
  it('the fixture covers every kind of event compared below', () => {
    expect([...new Set(reference.map(kindOf))].sort()).toEqual(Object.keys(ours).sort());
  });

  it.each(Object.keys(ours))('builds a %s event with exactly the fields and JSON types Distribution 2.8.2 sends', (kind) => {
    const theirs = reference.find((e) => kindOf(e) === kind)!;
    const built = buildRegistryEvent(scope, ours[kind], source);
    expect(shape(built)).toEqual(shape(theirs));
  });

  it('takes the request from the scope and the source from the process', () => {
    const built = buildRegistryEvent(scope, ours['push blob'], source, new Date('2026-11-27T19:42:32.267Z'));
    expect(built.request).toEqual({ id: scope.requestId, addr: '127.0.0.1:42214', host: '127.0.0.1:5055', method: 'PUT', useragent: 'skopeo/1.9.3' });
    expect(built.source).toEqual(source);
    expect(built.timestamp).toBe('2026-11-27T19:42:32.267Z');
    expect(built.actor).toEqual({});
    expect(built.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('names the actor of an authenticated scope', () => {
    const built = buildRegistryEvent({ ...scope, principal: { kind: 'user', name: 'alice' } }, ours['push blob'], source);
    expect(built.actor).toEqual({ name: 'alice' });
  });
});
