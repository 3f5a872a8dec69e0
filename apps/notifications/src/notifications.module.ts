import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { DynamicModule, Inject, Injectable, Logger, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { createEventBus, type EventBus, type EventBusConfig } from '@lading/events';
import { EVENT_BUS, HealthChecks, LADING_CONFIG, type LadingConfig } from '@lading/nest-common';
import { NOTIFICATIONS_OPTIONS, type NotificationsOptions } from './notifications.config';
import { OutboxRelayService } from './outbox/outbox-relay.service';
import { WebhookConsumer } from './webhooks/webhook.consumer';
import { WebhookDeliveryModule } from './webhooks/webhooks.module';

/**
 * The bus the configuration asks for: Kafka with `kafka.brokers`, else the in-process one.
 * @throws when a TLS file of `kafka.tls` cannot be read (at start, naming the key and the file).
 */
export function eventBusConfig(config: LadingConfig): EventBusConfig {
  const { brokers, clientid, tls, sasl } = config.kafka;
  if (!brokers) return { kind: 'in-process' };
  const { topic, partitions, replicationfactor, producers } = config.notifications.kafka;
  return {
    kind: 'kafka',
    brokers,
    clientId: clientid,
    topic,
    partitions,
    replicationFactor: replicationfactor,
    producers,
    tls: kafkaTls(tls),
    sasl: sasl.mechanism ? { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! } : undefined,
  };
}

/** The TLS options of `kafka.tls`, its PEM files read; undefined when TLS is off. */
function kafkaTls(tls: LadingConfig['kafka']['tls']): ConnectionOptions | undefined {
  if (!tls.enabled) return undefined;
  const read = (key: 'ca' | 'cert' | 'key') => {
    const path = tls[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`kafka.tls.${key}: cannot read ${path}: ${(e as Error).message}`);
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key'), rejectUnauthorized: !tls.insecureskipverify };
}

/**
 * Health of the relay: readiness reports the bus (state, since, why), the backlog (unsent events
 * and the age of the oldest, by the database's clock) and the relay's counters; liveness fails
 * only when the relay loop has stopped going round (a restart helps then; a Kafka outage is not
 * that: the loop keeps retrying).
 */
@Injectable()
class NotificationsLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(HealthChecks) private readonly health: HealthChecks,
    private readonly relay: OutboxRelayService,
    @Inject(NOTIFICATIONS_OPTIONS) private readonly options: NotificationsOptions,
    @Inject(LADING_CONFIG) private readonly config: LadingConfig,
  ) {}

  onModuleInit(): void {
    this.health.addReadiness('events', async () => {
      const bus = this.bus.health();
      const backlog = await this.relay.backlog();
      return { ok: !this.options.readinessFollowsBus || bus.state === 'up', report: { bus, backlog, relay: this.relay.stats() } };
    });
    const stalledAfter = Math.max(120_000, 6 * this.config.notifications.outbox.lease);
    this.health.addLiveness('relay', async () => {
      const heartbeatAgeMs = this.relay.heartbeatAgeMs();
      return { ok: heartbeatAgeMs < stalledAfter, report: { heartbeatAgeMs } };
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.bus.close();
  }
}

/**
 * The only emitter of registry events: relays the outbox (written by blob-upload and manifests
 * in the transaction of each change, and by every process's pull event buffer) to the event bus
 * (`EVENT_BUS`). Webhook delivery subscribes to the same bus: one subscription per endpoint (on
 * Kafka a consumer group through `@nestjs/microservices`' Kafka transport).
 */
@Module({})
export class NotificationsModule {
  static forRoot(options: NotificationsOptions): DynamicModule {
    return {
      module: NotificationsModule,
      imports: [WebhookDeliveryModule],
      providers: [
        { provide: NOTIFICATIONS_OPTIONS, useValue: options },
        {
          provide: EVENT_BUS,
          inject: [LADING_CONFIG],
          useFactory: (config: LadingConfig) => {
            const logger = new Logger('EventBus');
            return createEventBus(eventBusConfig(config), {
              log: (m) => logger.log(m),
              warn: (m) => logger.warn(m),
              debug: (m) => logger.debug(m),
            });
          },
        },
        OutboxRelayService,
        NotificationsLifecycle,
        WebhookConsumer,
      ],
      exports: [EVENT_BUS, OutboxRelayService, WebhookDeliveryModule],
    };
  }
}
