/** How the notifications module is run (`NotificationsModule.forRoot`). */
export interface NotificationsOptions {
  /**
   * Whether readiness fails while the bus is unreachable or a webhook consumer has stopped: yes
   * for the notifications app (relaying and delivering are its whole job), no in the embedded
   * registry (it still serves pushes and pulls; the events wait in the outbox or on the topic).
   */
  readinessFollowsBus: boolean;
  /**
   * How long a webhook consumer that could not subscribe (Kafka down at start, say) waits before
   * it tries again, doubling each time up to 30 s. Default 1 s.
   */
  resubscribeAfterMs?: number;
}

/** The injection token of the {@link NotificationsOptions}. */
export const NOTIFICATIONS_OPTIONS = Symbol('NOTIFICATIONS_OPTIONS');
