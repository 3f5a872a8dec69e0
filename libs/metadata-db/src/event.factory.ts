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
 * The one builder of registry event envelopes, in the reference registry's notification format
 * (see shared/fixtures/distribution-2.8.2-events.jsonl): id, timestamp, action, target, the
 * request (from the request scope), actor and source. Fields a scope does not know are left out,
 * as Distribution leaves them empty. A delete's target names only what was deleted — the digest,
 * or the tag — and the repository, exactly as Distribution's do.
 */
export function buildRegistryEvent(scope: RequestScope, input: RegistryEventInput, source: EventSource, now = new Date()): RegistryEvent {
  const { addr, host, method, useragent } = scope.client;
  const actor = actorName(scope);
  return {
    id: randomUUID(),
    timestamp: now.toISOString(),
    action: input.action,
    target: targetOf(input),
    request: { id: scope.requestId, addr, host, method, useragent },
    actor: actor ? { name: actor } : {},
    source: { ...(source.addr ? { addr: source.addr } : {}), instanceID: source.instanceID },
  };
}

/** The envelope version written with each outbox row. */
export const OUTBOX_ENVELOPE_VERSION = EVENT_ENVELOPE_VERSION;

function targetOf(input: RegistryEventInput): RegistryEvent['target'] {
  const { repository, target } = input;
  if (input.action !== 'delete') return { ...target, repository };
  return target.tag !== undefined ? { repository, tag: target.tag } : { digest: target.digest, repository };
}
