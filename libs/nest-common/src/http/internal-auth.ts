import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Forwarded requests carry `x-lading-internal: <unix-ms>.<hmac>` where the HMAC-SHA256 (keyed
 * with `http.secret`) covers the method, the path with query, the timestamp and the principal.
 * Services refuse requests without a valid, fresh signature, so a bare header is never trusted.
 */
export function signInternalRequest(secret: string, method: string, url: string, principal = '', now = Date.now()): string {
  return `${now}.${mac(secret, method, url, principal, now)}`;
}

/** True when `header` is a signature by `secret` over this request, at most `maxSkewMs` old. */
export function verifyInternalRequest(
  secret: string,
  header: string | undefined,
  method: string,
  url: string,
  principal = '',
  now = Date.now(),
  maxSkewMs = 5 * 60_000,
): boolean {
  if (!header) return false;
  const dot = header.indexOf('.');
  const ts = Number(header.slice(0, dot));
  if (dot < 0 || !Number.isFinite(ts) || Math.abs(now - ts) > maxSkewMs) return false;
  const expected = Buffer.from(mac(secret, method, url, principal, ts));
  const given = Buffer.from(header.slice(dot + 1));
  return expected.length === given.length && timingSafeEqual(expected, given);
}

function mac(secret: string, method: string, url: string, principal: string, ts: number): string {
  return createHmac('sha256', secret).update(`${method}\n${url}\n${ts}\n${principal}`).digest('base64url');
}
