import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * The admin APIs' bearer token (webhooks on notifications, GC on gc-worker and the embedded
 * process): derived from `http.secret` (HMAC-SHA256 over a fixed label), so the secret itself
 * never travels; the `lading` commands compute the same. Until the registry has real
 * authentication, whoever holds the internal secret is an operator.
 */
export function adminToken(secret: string): string {
  return createHmac('sha256', secret).update('lading-admin-v1').digest('hex');
}

/** True when `req` carries the admin token of `secret`; otherwise answers 401 and returns false. */
export function authorizeAdmin(req: Request, res: Response, secret: string | undefined): boolean {
  const given = /^Bearer ([0-9a-f]{64})$/.exec(req.headers.authorization ?? '')?.[1];
  if (secret && given && timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(adminToken(secret), 'hex'))) return true;
  res.status(401).set('WWW-Authenticate', 'Bearer realm="lading-admin"').json({ error: 'the admin API needs Authorization: Bearer <token derived from http.secret>' });
  return false;
}
