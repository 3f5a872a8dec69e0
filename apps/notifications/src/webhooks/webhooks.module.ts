import { Module } from '@nestjs/common';
import { MetadataDb } from '@lading/metadata-db';
import { LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { WebhookAddressGuard } from './webhook-address.guard';
import { WebhookSender } from './webhook.sender';
import { WebhookDispatcher } from './webhook.service';

/** Webhook delivery and the admin API's service (its consumer, `WebhookConsumer`, is provided beside `EVENT_BUS`); needs LadingCoreModule. */
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
