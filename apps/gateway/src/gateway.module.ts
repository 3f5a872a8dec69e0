import { DynamicModule, Module, type Type } from '@nestjs/common';
import {
  ConfigInvalidError,
  forwardedHeadBytes,
  HealthController,
  internalAuthProblem,
  internalAuthSecret,
  type LadingConfig,
} from '@lading/nest-common';
import { GatewayController } from './routing/gateway.controller';
import { HttpUpstream, type HttpUpstreamOptions } from './upstream/http.upstream';
import { BLOB_UPLOAD_UPSTREAM, MANIFESTS_UPSTREAM } from './upstream/upstream.port';

/** The gateway, wired either to in-process handlers (embedded) or to services over HTTP (split). */
@Module({})
export class GatewayModule {
  /** In one process: the services' handlers are called directly. */
  static embedded(options: { imports: Type<unknown>[]; blobUpload: Type<unknown>; manifests: Type<unknown> }): DynamicModule {
    return {
      module: GatewayModule,
      imports: options.imports,
      controllers: [HealthController, GatewayController],
      providers: [
        { provide: BLOB_UPLOAD_UPSTREAM, useExisting: options.blobUpload },
        { provide: MANIFESTS_UPSTREAM, useExisting: options.manifests },
      ],
    };
  }

  /**
   * Split: requests go to `services.blobupload.url` and `services.manifests.url`, signed with
   * `http.secret`. @throws ConfigInvalidError listing what split mode lacks.
   */
  static split(config: LadingConfig): DynamicModule {
    const { blobupload, manifests } = config.services;
    const auth = internalAuthProblem(config, 'gateway');
    if (!blobupload.url || !manifests.url || auth) {
      throw new ConfigInvalidError([
        ...(blobupload.url ? [] : ['services.blobupload.url: the gateway needs it in split mode (LADING_SERVICES_BLOBUPLOAD_URL)']),
        ...(manifests.url ? [] : ['services.manifests.url: the gateway needs it in split mode (LADING_SERVICES_MANIFESTS_URL)']),
        ...(auth ? [auth] : []),
      ]);
    }
    const secret = internalAuthSecret(config, 'gateway');
    return {
      module: GatewayModule,
      controllers: [HealthController, GatewayController],
      providers: [
        { provide: BLOB_UPLOAD_UPSTREAM, useValue: new HttpUpstream(blobupload.url, upstreamOptions(config, secret)) },
        { provide: MANIFESTS_UPSTREAM, useValue: new HttpUpstream(manifests.url, upstreamOptions(config, secret)) },
      ],
    };
  }
}

function upstreamOptions(config: LadingConfig, secret: string | undefined): HttpUpstreamOptions {
  return {
    secret,
    connections: config.http.upstream.connections,
    queue: config.http.upstream.queue,
    maxRequestsPerConnection: config.http.upstream.maxrequests,
    idleTimeoutMs: config.http.timeouts.idle,
    maxHeaderBytes: forwardedHeadBytes(config.http.maxheaderbytes),
  };
}
