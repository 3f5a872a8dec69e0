/** How the notifications module is run (`NotificationsModule.forRoot`). */
export interface NotificationsOptions {
  /**
   * Whether readiness fails while the bus is unreachable or a webhook consumer has stopped: yes
   * for the notifications app (relaying and delivering are its whole job), no in the embedded
   * registry (it still serves pushes and pulls; the events wait in the outbox or on the topic).
   */
  readinessFollowsBus: boolean;
}

/** The injection token of the {@link NotificationsOptions}. */
export const NOTIFICATIONS_OPTIONS = Symbol('NOTIFICATIONS_OPTIONS');
