/**
 * The registry event envelope, versioned. It follows the reference registry's notification
 * format (see shared/fixtures/distribution-2.8.2-events.jsonl) so existing consumers work.
 */

/** The Kafka topic every registry event goes to, keyed by repository. */
export const REGISTRY_EVENTS_TOPIC = 'registry.events';

/** The envelope version Lading writes. */
export const EVENT_ENVELOPE_VERSION = 1;

/** What happened. `mount` is sent as `mount` (Distribution sends it as a push with `fromRepository`). */
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
    url?: string;
    tag?: string;
    fromRepository?: string;
  };
  request: { id?: string; addr?: string; host?: string; method?: string; useragent?: string };
  actor: { name?: string };
  source: { addr?: string; instanceID?: string };
}
