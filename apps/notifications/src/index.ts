export { NotificationsModule, eventBusConfig } from './notifications.module';
export type { NotificationsOptions } from './notifications.config';
export { OutboxRelayService, type RelayStats } from './outbox/outbox-relay.service';
export { main as startNotifications } from './main';
export * from './webhooks';
