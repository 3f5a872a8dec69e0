import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { RegistryEvent, RegistryEventAction, RequestContext } from '@lading/contracts';
import { runSql } from './metadata-db';

/**
 * Statements that both writers of the registry (blob-upload and manifests) need, kept in one
 * place: finding or creating a repository row, and appending to the event outbox.
 */

/** The id of repository `name`, or undefined when it does not exist. */
export async function findRepositoryId(m: EntityManager, name: string): Promise<number | undefined> {
  const { rows } = await runSql<{ id: number }>(m, 'SELECT id FROM repositories WHERE name = $1', [name]);
  return rows[0]?.id;
}

/** The id of repository `name`, created when missing (safe under concurrent creators). */
export async function ensureRepository(m: EntityManager, name: string): Promise<number> {
  const existing = await findRepositoryId(m, name);
  if (existing !== undefined) return existing;
  const { rows } = await runSql<{ id: number }>(
    m,
    'INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id',
    [name],
  );
  return rows[0]?.id ?? (await findRepositoryId(m, name))!;
}

/** What happened, for the outbox; the envelope is filled in here. */
export interface OutboxEventInput {
  action: RegistryEventAction;
  repository: string;
  target: Omit<RegistryEvent['target'], 'repository'>;
  request: RequestContext;
  /** Identifies the emitting process in `source`. */
  source?: { addr?: string; instanceID?: string };
}

/** Appends one event to the outbox through `m`, which must be the transaction of the change. */
export async function appendOutboxEvent(m: EntityManager, input: OutboxEventInput): Promise<RegistryEvent> {
  const { id: requestId, addr, host, method, useragent, actor } = input.request;
  const event: RegistryEvent = {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action: input.action,
    target: { ...input.target, repository: input.repository },
    request: { id: requestId, addr, host, method, useragent },
    actor: actor ? { name: actor } : {},
    source: input.source ?? {},
  };
  await runSql(m, 'INSERT INTO event_outbox (id, repository, action, payload) VALUES ($1, $2, $3, $4)', [
    event.id,
    input.repository,
    input.action,
    JSON.stringify(event),
  ]);
  return event;
}
