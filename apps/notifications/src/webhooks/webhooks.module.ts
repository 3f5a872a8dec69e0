import { Inject, Injectable, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { EventBus, EventSubscription } from '@lading/events';
import { MetadataDb } from '@lading/metadata-db';
import { EVENT_BUS, HealthChecks, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { WebhookAddressGuard } from './webhook-address.guard';
import { WebhookSender } from './webhook.sender';
import { WebhookDispatcher, type DeliverableEvent } from './webhook.service';

/** The consumer group (Kafka) of an endpoint: each endpoint reads the stream at its own pace. */
export function webhookGroup(endpoint: string): string {
  return `lading-webhooks-${endpoint}`;
}

/**
 * Webhook delivery as a consumer of the event stream, like any user's consumer: one subscription
 * (a Kafka consumer group; the in-process bus in embedded mode) per enabled endpoint takes each
 * event into that endpoint's delivery rows, and the dispatcher delivers them. Subscribed in
 * `onModuleInit`, before the relay starts publishing at bootstrap.
 */
@Injectable()
export class WebhookConsumer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private subscriptions: EventSubscription[] = [];

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(WebhookDispatcher) private readonly dispatcher: WebhookDispatcher,
    @Inject(WebhookSender) private readonly sender: WebhookSender,
    @Inject(HealthChecks) private readonly health: HealthChecks,
    @Inject(MetadataDb) private readonly db: MetadataDb,
  ) {}

  async onModuleInit(): Promise<void> {
    const enabled = this.dispatcher.endpoints.filter((e) => !e.disabled);
    if (enabled.length === 0) return;
    for (const endpoint of enabled) {
      this.subscriptions.push(await this.bus.subscribe(webhookGroup(endpoint.name), (e) => this.dispatcher.acceptFor(endpoint.name, [e.event as unknown as DeliverableEvent])));
    }
    this.dispatcher.start();
    this.logger.log(`delivering to ${enabled.map((e) => e.name).join(', ')}`);
    this.health.addReadiness('webhooks', async () => ({
      ok: true,
      report: { endpoints: await this.db.read.webhooks.endpointStates(enabled.map((e) => e.name)) },
    }));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.close()));
    await this.dispatcher.stop();
    await this.sender.close();
  }
}

/** Webhook delivery, the admin API's service and its consumer; needs LadingCoreModule and `EVENT_BUS`. */
@Module({
  providers: [
    { provide: WebhookAddressGuard, inject: [LADING_CONFIG], useFactory: (c: LadingConfig) => new WebhookAddressGuard(c.notifications.allowedhosts) },
    { provide: WebhookSender, inject: [WebhookAddressGuard], useFactory: (g: WebhookAddressGuard) => new WebhookSender(g) },
    {
      provide: WebhookDispatcher,
      inject: [MetadataDb, LADING_CONFIG, WebhookSender],
      useFactory: (db: MetadataDb, c: LadingConfig, sender: WebhookSender) =>
        new WebhookDispatcher(db, c.notifications.endpoints, sender, { cloudEventsSource: `urn:lading:${db.source.instanceID}`, retentionMs: c.notifications.deliveries.retention }),
    },
  ],
  exports: [WebhookDispatcher, WebhookSender],
})
export class WebhookDeliveryModule {}
