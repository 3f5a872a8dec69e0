import '@lading/nest-common/start-tracing';
import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { HealthController, type LadingConfig, LadingCoreModule, loadConfig, runIfEntryPoint, startHttpApp } from '@lading/nest-common';
import { NotificationsModule } from './notifications.module';
import { WebhookAdminController } from './webhooks/webhook-admin.controller';

@Module({})
class NotificationsAppModule {
  static forRoot(config: LadingConfig): DynamicModule {
    return {
      module: NotificationsAppModule,
      imports: [LadingCoreModule.forRoot(config), NotificationsModule.forRoot({ readinessFollowsBus: true })],
      // The webhook admin API lives here only: never routed by the public gateway.
      controllers: [HealthController, WebhookAdminController],
    };
  }
}

/**
 * Starts notifications on its own: the outbox relay, the webhook consumers (a Kafka consumer
 * group per endpoint) and their dispatcher, the admin API, and health checks on
 * `services.notifications.addr` (readiness 503 while the bus is unreachable or a consumer has
 * stopped, with the backlog). SIGTERM stops the relay, then the consumers, then the dispatcher.
 */
export async function main(): Promise<void> {
  const config = loadConfig();
  await startHttpApp(NotificationsAppModule.forRoot(config), {
    addr: config.services.notifications.addr ?? '127.0.0.1:5003',
    log: config.log,
    debug: config.http.debug,
  });
}

runIfEntryPoint(module, main);
