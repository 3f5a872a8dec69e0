import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { retryDelayMs } from './webhook-backoff';
import { isForbiddenAddress, WebhookAddressGuard } from './webhook-address.guard';
import { EVENTS_MEDIA_TYPE, RESPONSE_SNIPPET_BYTES, WebhookSender } from './webhook.sender';
import { signWebhook, SIGNATURE_HEADER, verifyWebhook } from './webhook-signature';

describe('webhook signatures', () => {
  const body = Buffer.from('{"events":[{"id":"1"}]}');
  const header = signWebhook('s3cret', body, 1_700_000_000);

  it.each([
    ['the signed body at the signing time', 's3cret', body, header, 1_700_000_000, true],
    ['within the tolerance', 's3cret', body, header, 1_700_000_000 + 299, true],
    ['a replay past the tolerance', 's3cret', body, header, 1_700_000_000 + 301, false],
    ['another secret', 'other', body, header, 1_700_000_000, false],
    ['a changed body', 's3cret', Buffer.from('{"events":[]}'), header, 1_700_000_000, false],
    ['a changed timestamp', 's3cret', body, header.replace('t=1700000000', 't=1700000001'), 1_700_000_000, false],
    ['no header', 's3cret', body, undefined, 1_700_000_000, false],
    ['a garbled header', 's3cret', body, 't=abc,v1=zz', 1_700_000_000, false],
  ])('verifies %s', (_name, secret, b, h, now, expected) => {
    expect(verifyWebhook(secret as string, b as Buffer, h as string | undefined, now as number)).toBe(expected);
  });

  it('is HMAC-SHA256 over "<t>.<body>", hex, as the README documents', () => {
    // echo -n '1700000000.{"events":[{"id":"1"}]}' | openssl dgst -sha256 -hmac s3cret
    const expected = createHmac('sha256', 's3cret').update('1700000000.{"events":[{"id":"1"}]}').digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
    expect(SIGNATURE_HEADER).toBe('Lading-Signature');
  });
});

describe('webhook address guard', () => {
  it.each([
    ['127.0.0.1', true], ['127.255.0.1', true], ['10.1.2.3', true], ['172.16.0.1', true], ['172.31.255.255', true],
    ['192.168.1.1', true], ['169.254.169.254', true], ['100.64.0.1', true], ['0.0.0.0', true], ['224.0.0.1', true],
    ['255.255.255.255', true], ['::1', true], ['::', true], ['fe80::1', true], ['fd00:ec2::254', true], ['fc00::1', true],
    ['::ffff:127.0.0.1', true], ['::ffff:7f00:1', true], ['64:ff9b::a9fe:a9fe', true], ['2002:7f00:1::', true], ['ff02::1', true],
    ['8.8.8.8', false], ['172.32.0.1', false], ['1.1.1.1', false], ['2606:4700:4700::1111', false], ['::ffff:8.8.8.8', false],
    ['not-an-ip', true],
  ])('%s is forbidden: %s', (address, forbidden) => {
    expect(isForbiddenAddress(address)).toBe(forbidden);
  });

  it('allows listed host names and networks, and only those', () => {
    const guard = new WebhookAddressGuard(['hooks.internal', '10.20.0.0/16', '::1']);
    expect(guard.allows('HOOKS.internal.', '10.0.0.5')).toBe(true);
    expect(guard.allows('other.internal', '10.20.3.4')).toBe(true);
    expect(guard.allows('other.internal', '10.21.3.4')).toBe(false);
    expect(guard.allows('localhost', '::1')).toBe(true);
    expect(guard.allows('localhost', '127.0.0.1')).toBe(false);
    expect(guard.allows('example.com', '93.184.215.14')).toBe(true);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/8/1', '::1/129', 'fe80::/x'])('refuses the allow-list entry %s', (entry) => {
    expect(() => new WebhookAddressGuard([entry])).toThrow(/notifications.allowedhosts/);
  });
});

describe('webhook retry delays', () => {
  it('double from the base up to the cap, with full jitter below that bound', () => {
    expect([1, 2, 3, 4, 10].map((a) => retryDelayMs(a, 1000, 5000, () => 0.999999))).toEqual([999, 1999, 3999, 4999, 4999]);
    expect(retryDelayMs(3, 1000, 5000, () => 0)).toBe(0);
    expect(retryDelayMs(3, 1000, 5000, () => 0.5)).toBe(2000);
  });
});

describe('webhook sender', () => {
  let server: Server;
  let url: string;
  let handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
  const received: { headers: IncomingMessage['headers']; body: Buffer }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        handler(req, res, Buffer.concat(chunks));
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  });
  beforeEach(() => {
    received.length = 0;
  });

  const body = Buffer.from('{"events":[]}');
  const target = (extra: object = {}) => ({ url, headers: { Authorization: ['Bearer t'], 'X-Two': ['a', 'b'] }, timeoutMs: 2000, ...extra });

  it('posts the body with its media type, the configured headers and a verifiable signature', async () => {
    handler = (_req, res) => res.writeHead(200).end('ok');
    const sender = new WebhookSender(new WebhookAddressGuard(['127.0.0.1']));
    const now = 1_800_000_000_000;
    const result = await sender.send(target({ secret: 'k' }), body, EVENTS_MEDIA_TYPE, now);
    await sender.close();
    expect(result).toMatchObject({ ok: true, status: 200, error: null, snippet: 'ok' });
    const [got] = received;
    expect(got.body.equals(body)).toBe(true);
    expect(got.headers).toMatchObject({ 'content-type': EVENTS_MEDIA_TYPE, authorization: 'Bearer t', 'x-two': 'a, b' });
    expect(verifyWebhook('k', got.body, got.headers['lading-signature'] as string, now / 1000)).toBe(true);
  });

  it('refuses a loopback endpoint that is not allow-listed, without connecting', async () => {
    const sender = new WebhookSender(new WebhookAddressGuard([]));
    for (const u of [url, url.replace('127.0.0.1', 'localhost')]) {
      const result = await sender.send(target({ url: u }), body, EVENTS_MEDIA_TYPE, Date.now());
      expect(result).toMatchObject({ ok: false, status: null });
      expect(result.error).toMatch(/loopback, private|allowedhosts/);
    }
    await sender.close();
    expect(received).toEqual([]);
  });

  it('does not follow a redirect, counts a 5xx as a failure, keeps a bounded snippet', async () => {
    const sender = new WebhookSender(new WebhookAddressGuard(['127.0.0.1']));
    handler = (_req, res) => res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data' }).end();
    expect(await sender.send(target(), body, EVENTS_MEDIA_TYPE, Date.now())).toMatchObject({ ok: false, status: 307, error: 'HTTP 307' });
    handler = (_req, res) => res.writeHead(500).end('x'.repeat(10_000));
    const failed = await sender.send(target(), body, EVENTS_MEDIA_TYPE, Date.now());
    expect(failed).toMatchObject({ ok: false, status: 500 });
    expect(failed.snippet).toHaveLength(RESPONSE_SNIPPET_BYTES);
    expect(received).toHaveLength(2);
    await sender.close();
  });

  it('gives up on an endpoint that never answers after its timeout', async () => {
    handler = () => undefined; // never answers
    const sender = new WebhookSender(new WebhookAddressGuard(['127.0.0.1']));
    const result = await sender.send(target({ timeoutMs: 300 }), body, EVENTS_MEDIA_TYPE, Date.now());
    await sender.close();
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/timed out|timeout/i);
  });
});
