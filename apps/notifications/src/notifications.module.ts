import { Module } from '@nestjs/common';

/**
 * The only emitter of registry events. The outbox rows it will relay (to Kafka and webhooks) are
 * already written by blob-upload and manifests in the transaction of each change; the relay is
 * the events milestone of the roadmap.
 */
@Module({})
export class NotificationsModule {}
