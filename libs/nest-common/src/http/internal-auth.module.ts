import { Module, type DynamicModule } from '@nestjs/common';
import type { LadingConfig } from '../config/lading.config';
import { internalAuthSecret, type InternalHopApp } from './internal-auth.config';
import { InternalAuthService } from './internal-auth.service';

/** What a split service needs to accept only the gateway's signed requests. */
@Module({})
export class InternalAuthModule {
  /**
   * For the split process of `app`; needs LadingCoreModule (config, database) in the app.
   * @throws ConfigInvalidError without `http.secret` unless `http.insecure` (then warns loudly).
   */
  static forService(config: LadingConfig, app: Exclude<InternalHopApp, 'gateway'>): DynamicModule {
    internalAuthSecret(config, app);
    return { module: InternalAuthModule, providers: [InternalAuthService], exports: [InternalAuthService] };
  }
}
