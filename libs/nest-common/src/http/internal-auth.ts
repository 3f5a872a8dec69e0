import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * What the gateway's signature covers of a forwarded request: everything the service acts on
 * except the body bytes themselves (they stream), and the framing of those bytes, so a captured
 * signature cannot carry another body length, type or encoding.
 */
export interface SignedRequestParts {
  method: string;
  /** The path with its query string. */
  url: string;
  /** The encoded request scope (the `x-lading-scope` header). */
  scope: string;
  /** `Content-Length` as the service receives it; `0` when absent (no body). */
  contentLength: string;
  /** `Content-Type`; empty when absent. */
  contentType: string;
  /** Whether the body comes chunked (`Transfer-Encoding`) rather than with a length. */
  chunked: boolean;
}

/** A verified signature: when the gateway made it, and its one-time nonce. */
export interface InternalSignature {
  issuedAt: number;
  nonce: string;
}

/** How far a signature's timestamp may be from the verifier's clock. */
export const SIGNATURE_WINDOW_MS = 5 * 60_000;

/** The signed parts of a request as its headers frame it (`chunked` when it has `Transfer-Encoding`). */
export function signedPartsOf(method: string, url: string, scope: string, headers: IncomingHttpHeaders, chunked: boolean): SignedRequestParts {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : (v ?? ''));
  return {
    method,
    url,
    scope,
    contentLength: one(headers['content-length']) || '0',
    contentType: one(headers['content-type']),
    chunked,
  };
}

/**
 * Forwarded requests carry `x-lading-internal: <unix-ms>.<nonce>.<hmac>` where the HMAC-SHA256
 * (keyed with `http.secret`) covers the timestamp, a random nonce and every signed part. Services
 * refuse requests without a valid, fresh signature, and a nonce they saw before.
 */
export function signInternalRequest(
  secret: string,
  parts: SignedRequestParts,
  options: { now?: number; nonce?: string } = {},
): string {
  const now = options.now ?? Date.now();
  const nonce = options.nonce ?? randomBytes(16).toString('base64url');
  return `${now}.${nonce}.${mac(secret, parts, now, nonce)}`;
}

/**
 * The signature in `header` when it was made by `secret` over these parts at most `maxSkewMs`
 * away from `now`; undefined otherwise. Whether its nonce was used before is the caller's check.
 */
export function verifyInternalRequest(
  secret: string,
  header: string | undefined,
  parts: SignedRequestParts,
  now = Date.now(),
  maxSkewMs = SIGNATURE_WINDOW_MS,
): InternalSignature | undefined {
  const fields = header?.split('.') ?? [];
  if (fields.length !== 3) return undefined;
  const [stamp, nonce, given] = fields;
  const issuedAt = Number(stamp);
  if (!/^\d{1,15}$/.test(stamp) || Math.abs(now - issuedAt) > maxSkewMs || !/^[\w-]{16,64}$/.test(nonce)) return undefined;
  const expected = Buffer.from(mac(secret, parts, issuedAt, nonce));
  const actual = Buffer.from(given);
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? { issuedAt, nonce } : undefined;
}

function mac(secret: string, p: SignedRequestParts, ts: number, nonce: string): string {
  // Header values cannot hold a newline, so the fields cannot run into each other.
  const text = ['lading-v2', p.method, p.url, ts, nonce, p.contentLength, p.contentType, p.chunked ? 'chunked' : '', p.scope].join('\n');
  return createHmac('sha256', secret).update(text).digest('base64url');
}
