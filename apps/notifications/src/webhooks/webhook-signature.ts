import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries a delivery's signature. */
export const SIGNATURE_HEADER = 'Lading-Signature';

/** How far a signature's timestamp may be from the receiver's clock before it refuses it (replay). */
export const SIGNATURE_TOLERANCE_S = 300;

/**
 * Signs a webhook body for an endpoint with a `secret`: `t=<unix seconds>,v1=<hex>`, where the
 * hex is HMAC-SHA256(secret, `<t>.<body>`). The timestamp is inside the MAC, so a receiver that
 * checks it against its clock refuses a replay of a captured delivery; `v1` names the scheme so
 * it can change without breaking receivers.
 */
export function signWebhook(secret: string, body: Buffer, timestampS: number): string {
  return `t=${timestampS},v1=${mac(secret, timestampS, body)}`;
}

/**
 * Checks a signature header as a receiver should: the `v1` MAC over `<t>.<body>` with the shared
 * secret, compared in constant time, and `t` within `toleranceS` of `nowS`. What the README's
 * "Consuming events" section tells users to do, in code.
 */
export function verifyWebhook(secret: string, body: Buffer, header: string | undefined, nowS: number, toleranceS = SIGNATURE_TOLERANCE_S): boolean {
  const fields = new Map((header ?? '').split(',').map((kv) => kv.trim().split('=', 2) as [string, string]));
  const t = Number(fields.get('t'));
  const v1 = fields.get('v1');
  if (!Number.isInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(nowS - t) > toleranceS) return false;
  return timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(mac(secret, t, body), 'hex'));
}

function mac(secret: string, t: number, body: Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}
