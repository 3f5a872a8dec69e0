export { NotificationsModule, eventBusConfig, type NotificationsOptions } from './notifications.module';
export { OutboxRelayService, type RelayStats } from './outbox/outbox-relay.service';
export { main as startNotifications } from './main';
export * from './webhooks';
