/**
 * The registry event envelope, versioned. It follows the reference registry's notification
 * format (see shared/fixtures/distribution-2.8.2-events.jsonl) so existing consumers work.
 */

/** The Kafka topic every registry event goes to by default (`notifications.kafka.topic`), keyed by repository. */
export const REGISTRY_EVENTS_TOPIC = 'registry.events';

/** The envelope version Lading writes. */
export const EVENT_ENVELOPE_VERSION = 1;

/** The media type of a batch of events as the reference registry posts it (`{"events":[…]}`). */
export const REGISTRY_EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/**
 * The Kafka headers of each registry event record: its id (consumers drop duplicates by it,
 * without parsing the value), the envelope version, and the W3C traceparent of the request
 * that caused it, when it had one. The record key is the repository; the value is the envelope.
 */
export const REGISTRY_EVENT_HEADERS = Object.freeze({
  id: 'lading-event-id',
  envelopeVersion: 'lading-envelope-version',
  traceparent: 'traceparent',
});

/**
 * What happened, named as the reference registry names it: `push` and `pull` of blobs and
 * manifests, `mount` (a blob linked from another repository; the target carries
 * `fromRepository`) and `delete` (of a manifest, a tag or a blob).
 */
export type RegistryEventAction = 'push' | 'pull' | 'delete' | 'mount';

/** One registry event, as Distribution 2.8 serialises it. */
export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: RegistryEventAction;
  target: {
    mediaType?: string;
    size?: number;
    digest?: string;
    length?: number;
    repository: string;
    fromRepository?: string;
    url?: string;
    tag?: string;
  };
  request: { id?: string; addr?: string; host?: string; method?: string; useragent?: string };
  actor: { name?: string };
  source: { addr?: string; instanceID?: string };
}

/** Field order of each part of the envelope, as Distribution writes it. */
const ORDER = {
  event: ['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source'],
  target: ['mediaType', 'size', 'digest', 'length', 'repository', 'fromRepository', 'url', 'tag'],
  request: ['id', 'addr', 'host', 'method', 'useragent'],
  actor: ['name'],
  source: ['addr', 'instanceID'],
} as const;

/**
 * The envelope as JSON with its fields in the reference registry's order (a stored envelope comes
 * back from `jsonb` with its keys re-sorted); fields the envelope does not know are dropped.
 */
export function encodeRegistryEvent(event: RegistryEvent): string {
  const pick = (value: object, keys: readonly string[]) => {
    const out: Record<string, unknown> = {};
    for (const k of keys) if ((value as Record<string, unknown>)[k] !== undefined) out[k] = (value as Record<string, unknown>)[k];
    return out;
  };
  const parts: Record<string, unknown> = {
    target: pick(event.target, ORDER.target),
    request: pick(event.request, ORDER.request),
    actor: pick(event.actor, ORDER.actor),
    source: pick(event.source, ORDER.source),
  };
  return JSON.stringify(pick({ ...event, ...parts }, ORDER.event));
}

/**
 * Every field path of an envelope with the JSON type found there (`target.size: number`, `actor: {}`
 * for an empty object), in the value's own field order: what tests compare against the reference
 * registry's captured events, so a consumer of those finds the same fields of the same types.
 */
export function envelopeFields(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [`${path}: ${value === null ? 'null' : typeof value}`];
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return [`${path}: {}`];
  return entries.flatMap(([k, v]) => envelopeFields(v, path ? `${path}.${k}` : k));
}
