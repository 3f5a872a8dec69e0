import { createHmac, timingSafeEqual } from 'node:crypto';

/** What the gateway's signature covers of a forwarded request. */
export interface SignedRequestParts {
  method: string;
  /** The path with its query string. */
  url: string;
  /** The encoded request scope (the `x-lading-scope` header). */
  scope: string;
}

/**
 * Forwarded requests carry `x-lading-internal: <unix-ms>.<hmac>` where the HMAC-SHA256 (keyed
 * with `http.secret`) covers the method, the path with query, the timestamp and the encoded
 * request scope. Services refuse requests without a valid, fresh signature, so a bare header is
 * never trusted.
 */
export function signInternalRequest(secret: string, parts: SignedRequestParts, now = Date.now()): string {
  return `${now}.${mac(secret, parts, now)}`;
}

/** True when `header` is a signature by `secret` over these parts, at most `maxSkewMs` old. */
export function verifyInternalRequest(
  secret: string,
  header: string | undefined,
  parts: SignedRequestParts,
  now = Date.now(),
  maxSkewMs = 5 * 60_000,
): boolean {
  if (!header) return false;
  const dot = header.indexOf('.');
  const ts = Number(header.slice(0, dot));
  if (dot <= 0 || !Number.isFinite(ts) || Math.abs(now - ts) > maxSkewMs) return false;
  const expected = Buffer.from(mac(secret, parts, ts));
  const given = Buffer.from(header.slice(dot + 1));
  return expected.length === given.length && timingSafeEqual(expected, given);
}

function mac(secret: string, p: SignedRequestParts, ts: number): string {
  return createHmac('sha256', secret).update(`${p.method}\n${p.url}\n${ts}\n${p.scope}`).digest('base64url');
}
