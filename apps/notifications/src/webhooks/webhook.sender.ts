import { Agent, request } from 'undici';
import { signWebhook, SIGNATURE_HEADER } from './webhook-signature';
import { WebhookAddressGuard } from './webhook-address.guard';

/** The reference registry's media type of a webhook body: `{"events":[…]}`. */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
/** CloudEvents 1.0, JSON batch format (one request carries several events). */
export const CLOUDEVENTS_BATCH_MEDIA_TYPE = 'application/cloudevents-batch+json';

/** How much of a response body a delivery log keeps. */
export const RESPONSE_SNIPPET_BYTES = 1024;

/** An endpoint as the sender needs it. */
export interface WebhookTarget {
  url: string;
  /** Extra request headers, each with one or more values (the reference registry's shape). */
  headers: Readonly<Record<string, readonly string[]>>;
  timeoutMs: number;
  /** When set, the body is signed (see `webhook-signature.ts`). */
  secret?: string;
}

/** What one delivery attempt did: the log row's content. */
export interface WebhookAttemptResult {
  /** Whether the endpoint took the events (a 2xx: redirects are not followed, so a 3xx is a failure). */
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error: string | null;
  /** The start of the response body, at most {@link RESPONSE_SNIPPET_BYTES}. */
  snippet: string;
}

/**
 * POSTs event batches to webhook endpoints. Never follows a redirect; connects only to addresses
 * the guard allows (checked at connect time, so DNS rebinding cannot slip past); gives up after
 * the endpoint's timeout (connect, headers and body together); reads at most a snippet of the
 * answer. Never throws: a failure is a result.
 */
export class WebhookSender {
  private readonly agent: Agent;

  constructor(private readonly guard: WebhookAddressGuard) {
    this.agent = new Agent({ connect: { lookup: guard.lookup }, keepAliveTimeout: 10_000, connections: 8 });
  }

  async send(target: WebhookTarget, body: Buffer, contentType: string, nowMs: number): Promise<WebhookAttemptResult> {
    const started = performance.now();
    const done = (r: Omit<WebhookAttemptResult, 'latencyMs'>): WebhookAttemptResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
    try {
      const url = new URL(target.url);
      this.guard.checkLiteral(url.hostname);
      const headers: Record<string, string | string[]> = {};
      for (const [name, values] of Object.entries(target.headers)) headers[name.toLowerCase()] = [...values];
      headers['content-type'] = contentType;
      if (target.secret) headers[SIGNATURE_HEADER.toLowerCase()] = signWebhook(target.secret, body, Math.floor(nowMs / 1000));
      const res = await request(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        maxRedirections: 0,
        headersTimeout: target.timeoutMs,
        bodyTimeout: target.timeoutMs,
        signal: AbortSignal.timeout(target.timeoutMs),
      } as Parameters<typeof request>[1]);
      const snippet = await readSnippet(res.body);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return done({ ok, status: res.statusCode, error: ok ? null : `HTTP ${res.statusCode}`, snippet });
    } catch (e) {
      const err = e as Error & { code?: string; cause?: Error };
      const reason = err.cause?.message ?? err.message;
      return done({ ok: false, status: null, error: `${err.name === 'TimeoutError' ? 'timed out' : reason}`.slice(0, 500), snippet: '' });
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

async function readSnippet(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= RESPONSE_SNIPPET_BYTES) break;
  }
  body.destroy();
  return Buffer.concat(chunks).subarray(0, RESPONSE_SNIPPET_BYTES).toString('utf8');
}
