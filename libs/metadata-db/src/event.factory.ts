import { randomUUID } from 'node:crypto';
import { EVENT_ENVELOPE_VERSION, actorName, type RegistryEvent, type RegistryEventAction, type RequestScope } from '@lading/contracts';

/** Identifies the process that emitted an event, as the reference registry's `source` does. */
export interface EventSource {
  /** `host:port` the process serves on. */
  addr?: string;
  /** A random id per process start. */
  instanceID: string;
}

/** What happened, in the terms of the event's `target`; the factory fills in the rest. */
export interface RegistryEventInput {
  action: RegistryEventAction;
  repository: string;
  target: Omit<RegistryEvent['target'], 'repository'>;
}

/**
 * The longest client-supplied string (user agent, Host) an envelope keeps, in characters. A
 * request head may be up to `http.maxheaderbytes`; an event must stay far below the broker's
 * record size limit, or it could never be relayed.
 */
export const MAX_EVENT_CLIENT_FIELD = 1024;

/**
 * The one builder of registry event envelopes, in the reference registry's notification format
 * (see shared/fixtures/distribution-2.8.2-events.jsonl): id, timestamp, action, target, the
 * request (from the request scope), actor and source. Fields a scope does not know are left out,
 * as Distribution leaves them empty. Writers describe the target with {@link blobEvent},
 * {@link manifestEvent} and {@link deleteEvent}, which give each action the fields Distribution's
 * carry. Client strings are cut at {@link MAX_EVENT_CLIENT_FIELD}.
 */
export function buildRegistryEvent(scope: RequestScope, input: RegistryEventInput, source: EventSource, now = new Date()): RegistryEvent {
  const { addr, host, method, useragent } = scope.client;
  const actor = actorName(scope);
  return {
    id: randomUUID(),
    timestamp: now.toISOString(),
    action: input.action,
    target: { ...input.target, repository: input.repository },
    request: { id: scope.requestId, addr, host: cut(host), method, useragent: cut(useragent) },
    actor: actor ? { name: actor } : {},
    source: { ...(source.addr ? { addr: source.addr } : {}), instanceID: source.instanceID },
  };
}

function cut(value: string | undefined): string | undefined {
  return value !== undefined && value.length > MAX_EVENT_CLIENT_FIELD ? value.slice(0, MAX_EVENT_CLIENT_FIELD) : value;
}

/** The media type Distribution gives every blob in its events, whatever the blob holds. */
export const BLOB_EVENT_MEDIA_TYPE = 'application/octet-stream';

/**
 * A blob's event (`push`, `pull`, or `mount` from `fromRepository`): the blob's digest, size (as
 * `size` and `length`) and URL, with Distribution's blob media type.
 */
export function blobEvent(
  action: 'push' | 'pull' | 'mount',
  repository: string,
  blob: { digest: string; size: number },
  url: string,
  fromRepository?: string,
): RegistryEventInput {
  const target = { mediaType: BLOB_EVENT_MEDIA_TYPE, digest: blob.digest, size: blob.size, length: blob.size, url };
  return { action, repository, target: action === 'mount' && fromRepository ? { ...target, fromRepository } : target };
}

/** A manifest's event (`push` or `pull`): media type, digest, size, URL, and the tag when it was addressed by one. */
export function manifestEvent(
  action: 'push' | 'pull',
  repository: string,
  manifest: { digest: string; mediaType: string; size: number },
  url: string,
  tag?: string,
): RegistryEventInput {
  const target = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, length: manifest.size, url };
  return { action, repository, target: tag !== undefined ? { ...target, tag } : target };
}

/**
 * The repository of an event that concerns none: GC removing a blob's bytes from storage once no
 * repository links it (each repository's loss of the blob was its own `delete` event before). A
 * consumer tells such a registry-wide delete from a repository's by the empty name, which no
 * repository can have.
 */
export const NO_REPOSITORY = '';

/** A delete: of a manifest or blob (`{ digest }`) or of a tag (`{ tag }`); in {@link NO_REPOSITORY} for a blob's bytes. */
export function deleteEvent(repository: string, deleted: { digest: string } | { tag: string }): RegistryEventInput {
  return { action: 'delete', repository, target: deleted };
}

/** The envelope version written with each outbox row. */
export const OUTBOX_ENVELOPE_VERSION = EVENT_ENVELOPE_VERSION;

