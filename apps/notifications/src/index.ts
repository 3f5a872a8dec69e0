export { NotificationsModule } from './notifications.module';
export { main as startNotifications } from './main';
export * from './webhooks';
