import type { RegistryEvent, RequestScope } from '@lading/contracts';
import { OUTBOX_ENVELOPE_VERSION, buildRegistryEvent, type EventSource, type RegistryEventInput } from '../event.factory';
import type { Queryer } from '../queryer';

/** The transactional outbox: an event row written in the transaction of the change it describes. */
export class OutboxStore {
  constructor(
    private readonly q: Queryer,
    private readonly source: EventSource,
  ) {}

  /**
   * Appends the event of a change; call it with the transaction of that change, so the event
   * exists exactly when the change does. Stores the envelope version, the request's traceparent
   * and tenant beside the envelope.
   */
  async append(scope: RequestScope, input: RegistryEventInput): Promise<RegistryEvent> {
    const event = buildRegistryEvent(scope, input, this.source);
    await this.q.query(
      `INSERT INTO event_outbox (id, repository, action, payload, envelope_version, traceparent, tenant)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [event.id, input.repository, input.action, JSON.stringify(event), OUTBOX_ENVELOPE_VERSION, scope.traceparent, scope.tenant],
    );
    return event;
  }
}
