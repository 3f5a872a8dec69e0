import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRegistryEvent, envelopeFields, systemScope, type RegistryEvent, type RequestScope } from '@lading/contracts';
import { blobEvent, buildRegistryEvent, deleteEvent, manifestEvent, MAX_EVENT_CLIENT_FIELD, type RegistryEventInput } from './event.factory';

/** Events Distribution 2.8.2 sent for a push, a pull and deletes (captured from its webhook). */
const reference: RegistryEvent[] = readFileSync(join(__dirname, 'fixtures/distribution-2.8.2-events.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .flatMap((l) => (JSON.parse(l) as { body: { events: RegistryEvent[] } }).body.events);

const paths = (value: unknown) => envelopeFields(value);
/** The set of field paths and types, order aside. */
const shape = (value: unknown) => envelopeFields(value).sort();

const scope: RequestScope = {
  ...systemScope('manifest.put', 'demo/app', '6d46a218-9f75-4537-a5ab-27854000b872'),
  client: { addr: '127.0.0.1:42214', host: '127.0.0.1:5055', method: 'PUT', useragent: 'skopeo/1.9.3' },
};
const source = { addr: 'vm:5055', instanceID: '0c7c5714-bfdb-4917-95a5-e819bc78f746' };
const digest = 'sha256:c245b6c2467a1c00123cc7d88d9ab2e494c837d3c528459bdc55a553e4fb84f6';
const blob = { digest, size: 5 };
const manifest = { digest, size: 747, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
const blobUrl = `http://127.0.0.1:5055/v2/demo/app/blobs/${digest}`;
const manifestUrl = `http://127.0.0.1:5055/v2/demo/app/manifests/${digest}`;

/** What Lading's writers pass (through the same builders) for each kind of event the fixture holds. */
const ours: Record<string, RegistryEventInput> = {
  'push blob': blobEvent('push', 'demo/app', blob, blobUrl),
  'push manifest': manifestEvent('push', 'demo/app', manifest, manifestUrl, 'v1'),
  'pull blob': blobEvent('pull', 'demo/app', blob, blobUrl),
  'pull manifest': manifestEvent('pull', 'demo/app', manifest, manifestUrl, 'v1'),
  'delete digest': deleteEvent('demo/app', { digest }),
  'delete tag': deleteEvent('demo/app', { tag: 'v1' }),
};

/**
 * Kinds the fixture has no capture of, each with the fixture event Distribution builds it from
 * and how (notifications/bridge.go): a mount is `createBlobEvent` plus `fromRepository`; a
 * manifest addressed by digest carries no `tag` (only `WithTagOption` sets it); a blob delete is
 * the same `{digest, repository}` target as a manifest delete.
 */
const derived: Record<string, { input: RegistryEventInput; from: string; edit(e: RegistryEvent): RegistryEvent }> = {
  'mount blob': {
    input: blobEvent('mount', 'demo/app', blob, blobUrl, 'demo/base'),
    from: 'push blob',
    edit: (e) => ({ ...e, action: 'mount', target: { ...e.target, fromRepository: 'demo/base' } }),
  },
  'push manifest by digest': {
    input: manifestEvent('push', 'demo/app', manifest, manifestUrl),
    from: 'push manifest',
    edit: (e) => ({ ...e, target: { ...e.target, tag: undefined } }),
  },
  'pull manifest by digest': {
    input: manifestEvent('pull', 'demo/app', manifest, manifestUrl),
    from: 'pull manifest',
    edit: (e) => ({ ...e, target: { ...e.target, tag: undefined } }),
  },
  'delete blob': { input: deleteEvent('demo/app', { digest }), from: 'delete digest', edit: (e) => e },
};

function kindOf(e: RegistryEvent): string {
  if (e.action === 'delete') return e.target.tag !== undefined ? 'delete tag' : 'delete digest';
  return `${e.action} ${e.target.mediaType === 'application/octet-stream' ? 'blob' : 'manifest'}`;
}

function captured(kind: string): RegistryEvent {
  return reference.find((e) => kindOf(e) === kind)!;
}

describe('buildRegistryEvent', () => {
  it('the fixture covers every kind of event compared below', () => {
    expect([...new Set(reference.map(kindOf))].sort()).toEqual(Object.keys(ours).sort());
  });

  it.each(Object.keys(ours))('builds a %s event with exactly the fields and JSON types Distribution 2.8.2 sends', (kind) => {
    const built = buildRegistryEvent(scope, ours[kind], source);
    expect(shape(built)).toEqual(shape(captured(kind)));
    expect(built.action).toBe(captured(kind).action);
  });

  it.each(Object.keys(derived))('builds a %s event as Distribution derives it from a captured one', (kind) => {
    const { input, from, edit } = derived[kind];
    const theirs = edit(captured(from));
    const built = buildRegistryEvent(scope, input, source);
    expect(shape(built)).toEqual(shape(theirs));
    expect(built.action).toBe(theirs.action);
  });

  it.each(Object.keys(ours))('serialises a %s event with its fields in the order Distribution writes them', (kind) => {
    const built = JSON.parse(encodeRegistryEvent(buildRegistryEvent(scope, ours[kind], source))) as RegistryEvent;
    expect(paths(built)).toEqual(paths(captured(kind)));
  });

  it('restores that order for an envelope read back from jsonb (keys re-sorted) and drops unknown fields', () => {
    const built = buildRegistryEvent(scope, blobEvent('mount', 'demo/app', blob, blobUrl, 'demo/base'), source);
    const shuffled = Object.fromEntries(Object.entries({ ...built, extra: 1 }).reverse()) as unknown as RegistryEvent;
    shuffled.target = Object.fromEntries(Object.entries(built.target).reverse()) as RegistryEvent['target'];
    const keys = Object.keys(JSON.parse(encodeRegistryEvent(shuffled)) as object);
    expect(keys).toEqual(['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
    expect(Object.keys((JSON.parse(encodeRegistryEvent(shuffled)) as RegistryEvent).target)).toEqual([
      'mediaType',
      'size',
      'digest',
      'length',
      'repository',
      'fromRepository',
      'url',
    ]);
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

  it('cuts a huge user agent, so no client can make an event too large to relay', () => {
    const huge = { ...scope, client: { ...scope.client, useragent: 'x'.repeat(900_000) } };
    expect(buildRegistryEvent(huge, ours['pull blob'], source).request.useragent).toHaveLength(MAX_EVENT_CLIENT_FIELD);
  });
});
