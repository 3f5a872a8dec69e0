/** Injection token of the validated LadingConfig. */
export const LADING_CONFIG = Symbol('LADING_CONFIG');
/** Injection token of the BlobStorage driver. */
export const BLOB_STORAGE = Symbol('BLOB_STORAGE');
/**
 * Injection token of the event bus (`EventBus` of libs/events: Kafka when `kafka.brokers` is set,
 * else in process), provided by the notifications module: the relay publishes to it, webhook
 * delivery and tests subscribe to it.
 */
export const EVENT_BUS = Symbol('EVENT_BUS');
