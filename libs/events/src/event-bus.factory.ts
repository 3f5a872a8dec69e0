import type { EventBus } from './event-bus.port';
import { InProcessEventBus } from './in-process.event-bus';
import { KafkaEventBus, type BusLogger, type KafkaBusOptions } from './kafka.event-bus';

/** Which bus to make: Kafka when brokers are configured, else the in-process one. */
export type EventBusConfig = { kind: 'in-process' } | ({ kind: 'kafka' } & Omit<KafkaBusOptions, 'logger'>);

/** Makes the configured bus (nothing connects until it is used). */
export function createEventBus(config: EventBusConfig, logger?: BusLogger): EventBus {
  return config.kind === 'kafka' ? new KafkaEventBus({ ...config, logger }) : new InProcessEventBus();
}
