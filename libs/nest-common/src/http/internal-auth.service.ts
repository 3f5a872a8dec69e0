import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Request } from 'express';
import { Headers, UnauthorizedError, UnavailableError } from '@lading/contracts';
import { MetadataDb } from '@lading/metadata-db';
import type { LadingConfig } from '../config/lading.config';
import { LADING_CONFIG } from '../core/tokens';
import { SIGNATURE_WINDOW_MS, signedPartsOf, verifyInternalRequest } from './internal-auth';
import { RecentNonceCache } from './recent-nonce.cache';

const PRUNE_INTERVAL_MS = 60_000;

/**
 * A service's check that a request comes from the gateway (split mode): a valid, fresh signature
 * over what the service acts on, and a nonce never seen before. Mutating requests claim their
 * nonce in the database, so a replay is refused by whichever replica it reaches; reads claim it
 * in this process (see RecentNonceCache for why that is enough). Expired nonces are pruned from
 * the database every minute.
 */
@Injectable()
export class InternalAuthService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(InternalAuthService.name);
  private readonly secret: string | undefined;
  private readonly reads = new RecentNonceCache();
  private pruner?: NodeJS.Timeout;

  constructor(
    @Inject(LADING_CONFIG) config: LadingConfig,
    @Inject(MetadataDb) private readonly db: MetadataDb,
  ) {
    // InternalAuthModule.forService checked (and warned) at start; this keeps a wiring slip from
    // turning the check off silently.
    if (!config.http.secret && !config.http.insecure) throw new Error('InternalAuthService needs http.secret or http.insecure');
    this.secret = config.http.secret;
  }

  onModuleInit(): void {
    if (!this.secret) return;
    this.pruner = setInterval(() => {
      this.db.read.nonces.prune().catch((e: Error) => this.logger.warn(`pruning request nonces failed: ${e.message}`));
    }, PRUNE_INTERVAL_MS);
    this.pruner.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.pruner);
  }

  /**
   * Checks the gateway's signature of `req` and claims its nonce, before anything of the request
   * is read or acted on; returns the signed, encoded request scope.
   * @throws UnauthorizedError when the signature is missing, wrong, stale or replayed.
   * @throws UnavailableError when the database cannot record the nonce.
   */
  async verify(req: Request): Promise<string> {
    const scope = header(req, Headers.internalScope);
    if (!this.secret) return scope; // insecure mode, warned about at start
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const parts = signedPartsOf(req.method, req.originalUrl, scope, req.headers, chunked);
    const signature = verifyInternalRequest(this.secret, header(req, Headers.internalAuth), parts);
    if (!signature) throw new UnauthorizedError('requests must come through the gateway');
    const fresh =
      req.method === 'GET' || req.method === 'HEAD'
        ? this.reads.claim(signature.nonce, signature.issuedAt + SIGNATURE_WINDOW_MS)
        : await this.claimShared(signature.nonce);
    if (!fresh) throw new UnauthorizedError('a replayed request is refused');
    return scope;
  }

  private async claimShared(nonce: string): Promise<boolean> {
    try {
      // Kept for two windows: a signature is fresh up to one window either side of the clock
      // of whichever replica checks it.
      return await this.db.read.nonces.claim(nonce, 2 * SIGNATURE_WINDOW_MS);
    } catch (e) {
      this.logger.warn(`claiming a request nonce failed: ${(e as Error).message}`);
      throw new UnavailableError('the metadata database is unavailable');
    }
  }
}

function header(req: Request, name: string): string {
  const v = req.headers[name];
  return typeof v === 'string' ? v : '';
}
