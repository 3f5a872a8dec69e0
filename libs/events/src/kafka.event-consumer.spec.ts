import { encodeRegistryEvent, REGISTRY_EVENT_HEADERS, type RegistryEvent } from '@lading/contracts';
import type { KafkaMessage } from 'kafkajs';
import { decodeEventRecord, EventRecordDeserializer, UndecodableEventError } from './kafka.event-consumer';

const event: RegistryEvent = {
  id: '0b6a3c0e-8f5e-4c1e-9d3a-2f1e0c9b8a7d',
  timestamp: '2026-01-01T00:00:00.000Z',
  action: 'push',
  target: { mediaType: 'application/octet-stream', digest: `sha256:${'a'.repeat(64)}`, repository: 'lib/app' },
  request: { id: 'r1', method: 'PUT' },
  actor: {},
  source: { instanceID: 'spec' },
};
const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** A record as the relay writes it, with `change` laid over. */
function record(change: Partial<Pick<KafkaMessage, 'key' | 'value' | 'headers'>> = {}): Pick<KafkaMessage, 'key' | 'value' | 'headers'> {
  return {
    key: Buffer.from('lib/app'),
    value: Buffer.from(encodeRegistryEvent(event)),
    headers: {
      [REGISTRY_EVENT_HEADERS.id]: Buffer.from(event.id),
      [REGISTRY_EVENT_HEADERS.envelopeVersion]: Buffer.from('1'),
      [REGISTRY_EVENT_HEADERS.traceparent]: Buffer.from(traceparent),
    },
    ...change,
  };
}
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('decodeEventRecord', () => {
  it('reads the record the relay writes: key = repository, the envelope, id, version and traceparent headers', () => {
    expect(decodeEventRecord(record())).toEqual({ id: event.id, repository: 'lib/app', envelopeVersion: 1, traceparent, event });
  });

  it.each([
    ['no headers: the id from the envelope, version 1, no traceparent', { headers: {} }, { id: event.id, envelopeVersion: 1, traceparent: null }],
    ['no key: the repository from the target', { key: null }, { repository: 'lib/app' }],
    ['a header given twice: the first', { headers: { [REGISTRY_EVENT_HEADERS.id]: [Buffer.from(event.id), Buffer.from('other')] } }, { id: event.id }],
    ['a surrogate pair (an emoji) in a string', { value: json({ ...event, actor: { name: 'ci \u{1F680}' } }) }, { event: { ...event, actor: { name: 'ci \u{1F680}' } } }],
    ['a backslash-u text that is no NUL', { value: json({ ...event, actor: { name: 'a\\u0000b' } }) }, { event: { ...event, actor: { name: 'a\\u0000b' } } }],
  ])('%s', (_, change, expected) => {
    expect(decodeEventRecord(record(change))).toMatchObject(expected);
  });

  it.each([
    ['a tombstone', { value: null }, 'the record has no value'],
    ['an empty value', { value: Buffer.alloc(0) }, 'the record has no value'],
    ['text', { value: Buffer.from('hello') }, /^the value is not JSON/],
    ['binary (schema registry framing)', { value: Buffer.from([0, 0, 0, 0, 1, 2]) }, /^the value is not JSON/],
    ['a JSON array', { value: json([event]) }, 'the value is not an event envelope'],
    ['a JSON string', { value: json('push') }, 'the value is not an event envelope'],
    ['JSON null', { value: json(null) }, 'the value is not an event envelope'],
    ['no id', { value: json({ ...event, id: undefined }) }, 'the envelope has no uuid id'],
    ['an id that is no uuid', { value: json({ ...event, id: 'event-1' }) }, 'the envelope has no uuid id'],
    ['an upper-case uuid', { value: json({ ...event, id: event.id.toUpperCase() }) }, 'the envelope has no uuid id'],
    ['no action', { value: json({ ...event, action: '' }) }, 'the envelope has no action'],
    ['no target', { value: json({ ...event, target: null }) }, 'the envelope has no target repository'],
    ['a target without repository', { value: json({ ...event, target: { digest: 'sha256:x' } }) }, 'the envelope has no target repository'],
    ['an id header of another event', { headers: { [REGISTRY_EVENT_HEADERS.id]: Buffer.from('1b6a3c0e-8f5e-4c1e-9d3a-2f1e0c9b8a7d') } }, /^the id header .* is not the envelope's id/],
    ['a version header that is no version', { headers: { [REGISTRY_EVENT_HEADERS.envelopeVersion]: Buffer.from('v1') } }, 'the envelope version header is no version'],
    ['a NUL in a string (PostgreSQL cannot store it)', { value: Buffer.from(encodeRegistryEvent(event).replace('lib/app', 'lib/\\u0000app')) }, /holds a NUL character/],
    ['a NUL in a key', { value: json({ ...event, request: { ...event.request, ['x\u0000']: 1 } }) }, /holds a NUL character/],
    ['a lone surrogate', { value: Buffer.from(encodeRegistryEvent(event).replace('"spec"', '"sp\\ud800ec"')) }, /lone UTF-16 surrogate/],
  ])('refuses %s', (_, change, reason) => {
    expect(() => decodeEventRecord(record(change))).toThrow(UndecodableEventError);
    expect(() => decodeEventRecord(record(change))).toThrow(reason);
  });
});

describe('EventRecordDeserializer', () => {
  const deserializer = new EventRecordDeserializer();
  const message = (change: Partial<KafkaMessage>) => ({ ...record(), timestamp: '0', attributes: 0, offset: '7', ...change }) as KafkaMessage;

  it('routes a record by its topic, with the event as data', () => {
    expect(deserializer.deserialize(message({}), { channel: 'registry.events' })).toEqual({
      pattern: 'registry.events',
      data: { event: { id: event.id, repository: 'lib/app', envelopeVersion: 1, traceparent, event } },
    });
  });

  it('never throws: a record that is no event becomes data saying why', () => {
    expect(deserializer.deserialize(message({ value: Buffer.from('{') }), { channel: 'registry.events' })).toEqual({
      pattern: 'registry.events',
      data: { error: expect.stringMatching(/^the value is not JSON/) },
    });
  });
});
