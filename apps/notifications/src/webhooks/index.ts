export { WebhookAddressGuard, ForbiddenWebhookAddressError, isForbiddenAddress } from './webhook-address.guard';
export { retryDelayMs } from './webhook-backoff';
export { signWebhook, verifyWebhook, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_S } from './webhook-signature';
export { WebhookSender, EVENTS_MEDIA_TYPE, CLOUDEVENTS_BATCH_MEDIA_TYPE, type WebhookTarget, type WebhookAttemptResult } from './webhook.sender';
export { WebhookDispatcher, type DeliverableEvent, type WebhookDispatcherOptions, type WebhookEndpoint } from './webhook.service';
export { adminToken, WebhookAdminController } from './webhook-admin.controller';
export { WebhookConsumer, webhookGroup } from './webhook.consumer';
export { WebhookDeliveryModule } from './webhooks.module';
