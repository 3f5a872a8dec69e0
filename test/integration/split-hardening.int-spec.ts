import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeRequestScope, encodeRequestScope, systemScope } from '@lading/contracts';
import { signedPartsOf, signInternalRequest, verifyInternalRequest } from '@lading/nest-common';
import { randomBlob, randomImage, RegistryTestClient, type TestBlob, type TestImage, type TestResponse } from '@lading/testing';
import {
  createTestDatabase,
  freePort,
  serveUntilExit,
  startEmbedded,
  startLading,
  startSplit,
  type LadingProcess,
  type SplitStack,
} from '../support/registry-processes';
import { RequestTap, replay, type CapturedRequest } from '../support/request-tap';
import { callAlone, expectAllHealthy, isRunning, openSession, withDb } from '../support/robustness-stack';
import { RawRequest, RepeatedBlob } from '../support/robustness-streams';
import { StalledReader, within } from '../support/stalled-clients';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Runs curl with `args`; resolves with the status code it printed (`-w %{http_code}`) and its stderr. */
async function curl(args: string[]): Promise<{ status: number; stderr: string }> {
  const { stdout, stderr } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-v', ...args], {
    maxBuffer: 16 * MiB,
  });
  return { status: Number(stdout.trim()), stderr };
}

/** Expects an OCI error answer: `status` and a `{"errors":[…]}` body whose first code is `code`. */
function expectOciError(r: TestResponse, status: number, code: string): void {
  expect({ status: r.status, body: r.body.toString('utf8').slice(0, 300) }).toEqual({ status, body: expect.any(String) });
  expect(r.json().errors[0].code).toBe(code);
  expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0');
}

/** Polls `condition` until it holds; throws naming `what` after `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Calls `attempt` until it resolves; rethrows its last error after `ms`. */
async function eventually<T>(attempt: () => Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${(e as Error).message})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Pushes a blob of `blob.size` repeated bytes through `c` (streamed, never whole in memory). */
async function pushRepeated(c: RegistryTestClient, name: string, blob: RepeatedBlob): Promise<string> {
  const digest = await blob.digest();
  const start = await c.call('POST', `/v2/${name}/blobs/uploads/`);
  expect(start.status).toBe(202);
  const sep = start.headers.location.includes('?') ? '&' : '?';
  const put = await c.call('PUT', `${start.headers.location}${sep}digest=${digest}`, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: blob.bytes(),
  });
  expect(put.status).toBe(201);
  return digest;
}

/** A bearer token of about `bytes` bytes, as a token carrying many scopes looks on the wire. */
const bigToken = (bytes: number) => `Bearer ${'eyJhbGciOi'.repeat(Math.ceil(bytes / 10)).slice(0, bytes)}`;

describe('embedded (one process, on PostgreSQL): request heads', () => {
  let reg: LadingProcess & { dataDir: string };
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    reg = await startEmbedded({ LADING_DATABASE_URL: db.url, LADING_HTTP_MAXHEADERBYTES: String(64 * 1024) });
  });
  afterAll(async () => {
    await reg?.stop();
    if (reg) rmSync(reg.dataDir, { recursive: true, force: true });
    await drop?.();
  });

  it('serves a request with a 20 KB bearer token', async () => {
    const r = await callAlone(reg.url, 'GET', '/v2/', { headers: { authorization: bigToken(20_000) } });
    expect(r.status).toBe(200);
  });

  it('answers a head over http.maxheaderbytes with 431 and the OCI error body, and keeps serving', async () => {
    const r = await callAlone(reg.url, 'GET', '/v2/', { headers: { authorization: bigToken(100 * 1024) } });
    expectOciError(r, 431, 'HEADERS_TOO_LARGE');
    expect(isRunning(reg)).toBe(true);
    expect((await callAlone(reg.url, 'GET', '/v2/')).status).toBe(200);
  });
});

describe('split mode hardening', () => {
  let stack: SplitStack;
  let c: RegistryTestClient;
  let scratch: string;
  beforeAll(async () => {
    stack = await startSplit({ withWorkers: false });
    c = new RegistryTestClient(stack.url);
    scratch = mkdtempSync(join(tmpdir(), 'lading-hardening-'));
  });
  afterAll(async () => {
    await c?.close();
    await stack?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe('Expect: 100-continue (curl sends it on bodies over 1 MB)', () => {
    /** Writes `blob` to a scratch file for curl to send. */
    function fileOf(blob: TestBlob): string {
      const file = join(scratch, blob.digest.slice(7, 19));
      writeFileSync(file, blob.bytes);
      return file;
    }

    /** Expects the blob to read back whole from `name`. */
    async function expectReadsBack(name: string, blob: TestBlob): Promise<void> {
      const get = await c.call('GET', `/v2/${name}/blobs/${blob.digest}`);
      expect(get.status).toBe(200);
      expect(get.headers['docker-content-digest']).toBe(blob.digest);
      expect(get.body.equals(blob.bytes)).toBe(true);
    }

    it('takes a PATCH of 2 MiB sent with curl -T, then the closing PUT', async () => {
      const name = 'hardening/expect-patch';
      const blob = randomBlob(2 * MiB);
      const session = await openSession(c, name);
      const patch = await curl(['-X', 'PATCH', '-T', fileOf(blob), '-H', 'Content-Type: application/octet-stream', `${stack.url}${session.location}`]);
      expect(patch.stderr).toMatch(/> Expect: 100-continue/i);
      expect(patch.status).toBe(202);
      const sep = session.location.includes('?') ? '&' : '?';
      const put = await c.call('PUT', `${session.location}${sep}digest=${blob.digest}`);
      expect(put.status).toBe(201);
      await expectReadsBack(name, blob);
    });

    it('takes a closing PUT of 2 MiB sent with curl -T', async () => {
      const name = 'hardening/expect-put';
      const blob = randomBlob(2 * MiB);
      const session = await openSession(c, name);
      const sep = session.location.includes('?') ? '&' : '?';
      const put = await curl(['-T', fileOf(blob), '-H', 'Content-Type: application/octet-stream', `${stack.url}${session.location}${sep}digest=${blob.digest}`]);
      expect(put.stderr).toMatch(/> Expect: 100-continue/i);
      expect(put.status).toBe(201);
      await expectReadsBack(name, blob);
    });

    it('takes a monolithic POST of 2 MiB sent with curl --data-binary @file', async () => {
      const name = 'hardening/expect-post';
      const blob = randomBlob(2 * MiB);
      const post = await curl([
        '--data-binary',
        `@${fileOf(blob)}`,
        '-H',
        'Content-Type: application/octet-stream',
        `${stack.url}/v2/${name}/blobs/uploads/?digest=${blob.digest}`,
      ]);
      expect(post.stderr).toMatch(/> Expect: 100-continue/i);
      expect(post.status).toBe(201);
      await expectReadsBack(name, blob);
    });
  });

  describe('request heads', () => {
    it('forwards a 20 KB bearer token to both services', async () => {
      const blob = randomBlob(1000);
      expect((await c.pushBlob('hardening/heads', blob)).status).toBe(201);
      const headers = { authorization: bigToken(20_000) };
      const get = await c.call('GET', `/v2/hardening/heads/blobs/${blob.digest}`, { headers });
      expect(get.status).toBe(200);
      expect(get.body.equals(blob.bytes)).toBe(true);
      expect((await c.call('GET', '/v2/_catalog', { headers })).status).toBe(200);
    });

    it('forwards a head close to the limit although the signed scope repeats its User-Agent', async () => {
      const headers = { 'user-agent': `big/${'u'.repeat(700 * 1024)}` };
      expect((await c.call('GET', '/v2/_catalog', { headers })).status).toBe(200);
      expect((await c.call('GET', '/v2/hardening/heads/tags/list', { headers })).status).toBe(404);
    });

    it('answers a head over http.maxheaderbytes with 431 and the OCI error body, and keeps serving', async () => {
      const gateway = await stack.startExtra('gateway', { LADING_HTTP_MAXHEADERBYTES: String(64 * 1024) });
      const r = await callAlone(gateway.url, 'GET', '/v2/_catalog', { headers: { authorization: bigToken(100 * 1024) } });
      expectOciError(r, 431, 'HEADERS_TOO_LARGE');
      await expectAllHealthy([gateway]);
      expect((await callAlone(gateway.url, 'GET', '/v2/_catalog')).status).toBe(200);
    });
  });

  describe('idle timeouts and the bounded upstream queue', () => {
    /** http.timeouts.idle of the gateway under test. */
    const IDLE_MS = 2_000;
    const big = new RepeatedBlob(64 * MiB);
    const small = randomBlob(2000);
    const name = 'hardening/timeouts';
    let bigPath: string;
    let smallPath: string;
    /** Idle timeout of 2 s, one connection per service and a queue of 4 behind it. */
    let idleGateway: LadingProcess;
    /** Idle timeout of 5 min, one connection per service and a queue of one behind it. */
    let queueGateway: LadingProcess;
    beforeAll(async () => {
      bigPath = `/v2/${name}/blobs/${await pushRepeated(c, name, big)}`;
      expect((await c.pushBlob(name, small)).status).toBe(201);
      smallPath = `/v2/${name}/blobs/${small.digest}`;
      const upstream = (connections: number, queue: number) => ({
        LADING_HTTP_UPSTREAM_CONNECTIONS: String(connections),
        LADING_HTTP_UPSTREAM_QUEUE: String(queue),
      });
      idleGateway = await stack.startExtra('gateway', { LADING_HTTP_TIMEOUTS_IDLE: `${IDLE_MS}ms`, ...upstream(1, 4) });
      queueGateway = await stack.startExtra('gateway', { LADING_HTTP_TIMEOUTS_IDLE: '5m', ...upstream(1, 1) });
    });

    it.each([
      ['a manifest PUT', `/v2/${name}/manifests/stalled`, 'application/vnd.oci.image.manifest.v1+json'],
      ['a monolithic upload POST', `/v2/${name}/blobs/uploads/?digest=${randomBlob(1000).digest}`, 'application/octet-stream'],
    ])('closes the connection of %s whose body stalls half way, within the idle timeout', async (_what, path, type) => {
      const request = await RawRequest.open(
        idleGateway.url,
        [`${path.includes('manifests') ? 'PUT' : 'POST'} ${path} HTTP/1.1`, `Host: ${new URL(idleGateway.url).host}`, `Content-Type: ${type}`, 'Content-Length: 1000'].join('\n'),
      );
      const started = Date.now();
      await request.write(Buffer.alloc(500, 0x7b));
      const outcome = await request.response(30_000);
      request.destroy();
      const waited = Date.now() - started;
      expect({ waited: waited < 15_000, status: outcome.status ?? 'closed' }).toEqual({ waited: true, status: expect.anything() });
      expect(waited).toBeGreaterThanOrEqual(IDLE_MS - 200);
      await expectAllHealthy([idleGateway, stack.apps['manifests'], stack.apps['blob-upload']]);
      expect((await callAlone(idleGateway.url, 'GET', `/v2/${name}/manifests/stalled`)).status).toBe(404);
    });

    it('lets go of the upstream connection when clients stop reading a large blob: a normal request gets through after them', async () => {
      const stuck = await Promise.all([1, 2, 3].map(() => StalledReader.open(idleGateway.url, 'GET', bigPath)));
      expect((await stuck[0].answer(10_000))?.status).toBe(200);
      // The only connection to blob-upload is theirs until the gateway lets go; a request queued
      // behind them is itself bounded by the idle timeout, so try until one gets through.
      const r = await eventually(
        () => within(callAlone(idleGateway.url, 'GET', smallPath), 10_000, 'one attempt'),
        30_000,
        'a normal request after the stalled ones',
      );
      expect(r.status).toBe(200);
      expect(r.body.equals(small.bytes)).toBe(true);
      // Reading on, each stalled client finds its answer cut short.
      for (const s of stuck) expect(await s.drain(10_000)).toBeLessThan(big.size);
    });

    it('answers a burst beyond connections + queue with 503 UNAVAILABLE and Retry-After at once, and frees the slots of clients that go away', async () => {
      const burst = await Promise.all([1, 2, 3, 4, 5].map(() => StalledReader.open(queueGateway.url, 'GET', bigPath)));
      const heads = new Map<StalledReader, number>();
      for (const b of burst) void b.answer(60_000).then((h) => h && heads.set(b, h.status), () => undefined);
      const count = (status: number) => [...heads.values()].filter((s) => s === status).length;
      // One streams (and stalls), one waits for the only connection, the other three are refused.
      await until(() => count(503) === 3 && count(200) === 1, 15_000, 'three refusals and one stalled answer');
      for (const b of burst.filter((x) => heads.get(x) === 503)) {
        const h = (await b.answer(1_000))!;
        expect(Number(h.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(JSON.parse(h.body!.toString('utf8')).errors[0].code).toBe('UNAVAILABLE');
      }
      expect(burst.filter((b) => !heads.has(b))).toHaveLength(1);
      // Both clients go away; far within the 5 min idle timeout, the service is reachable again.
      for (const b of burst) b.destroy();
      const r = await within(callAlone(queueGateway.url, 'GET', smallPath), 10_000, 'a normal request after the clients left');
      expect(r.status).toBe(200);
    });
  });

  describe('internal request signing', () => {
    const name = 'hardening/signing';
    let tap: RequestTap;
    /** A gateway whose "services" are the tap: what it forwards is captured, not served. */
    let tapGateway: LadingProcess;
    let first: TestImage;
    let second: TestImage;
    const manifestsUrl = () => stack.apps['manifests'].url;
    const blobUploadUrl = () => stack.apps['blob-upload'].url;

    beforeAll(async () => {
      tap = await RequestTap.start();
      tapGateway = await stack.startExtra('gateway', { LADING_SERVICES_MANIFESTS_URL: tap.url, LADING_SERVICES_BLOBUPLOAD_URL: tap.url });
      first = randomImage({ layers: 1, layerSize: 1000 });
      second = randomImage({ layers: 1, layerSize: 1000 });
      expect((await c.pushImage(name, first, 'seed-1')).status).toBe(201);
      expect((await c.pushImage(name, second, 'seed-2')).status).toBe(201);
    });
    afterAll(async () => {
      await tap?.close();
    });

    /** Sends a request through the tap gateway: what a service would receive, signed. */
    async function capture(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<CapturedRequest> {
      expect((await callAlone(tapGateway.url, method, path, options)).status).toBe(202);
      return tap.last();
    }
    const putOf = (reference: string, image: TestImage) =>
      capture('PUT', `/v2/${name}/manifests/${reference}`, { headers: { 'content-type': image.mediaType }, body: image.manifest });
    const digestOf = async (reference: string) => (await c.call('HEAD', `/v2/${name}/manifests/${reference}`)).headers['docker-content-digest'];
    const uploadSessions = () => withDb(stack.databaseUrl, async (db) => (await db.query('SELECT count(*)::int AS n FROM upload_sessions')).rows[0].n as number);

    it('refuses an unsigned request and one signed with another secret (401), and changes nothing', async () => {
      const put = await putOf('unsigned', first);
      expectOciError(await replay(manifestsUrl(), put, { headers: { 'x-lading-internal': undefined } }), 401, 'UNAUTHORIZED');
      const parts = signedPartsOf('PUT', put.url, put.headers['x-lading-scope'], put.headers, false);
      const forged = signInternalRequest('not-the-secret-of-this-stack', parts);
      expectOciError(await replay(manifestsUrl(), put, { headers: { 'x-lading-internal': forged } }), 401, 'UNAUTHORIZED');
      expect((await c.call('GET', `/v2/${name}/manifests/unsigned`)).status).toBe(404);
    });

    it('refuses a replay of a captured manifest PUT on the same replica and on another (401), and changes nothing', async () => {
      const put = await putOf('replayed', first);
      expect((await replay(manifestsUrl(), put)).status).toBe(201);
      expect((await c.putManifest(name, 'replayed', second.manifest, second.mediaType)).status).toBe(201);
      expectOciError(await replay(manifestsUrl(), put), 401, 'UNAUTHORIZED');
      const replica = await stack.startExtra('manifests');
      expectOciError(await replay(replica.url, put), 401, 'UNAUTHORIZED');
      expect(await digestOf('replayed')).toBe(second.digest);
    });

    it('refuses a replay of a captured upload start on blob-upload (401), and opens no session', async () => {
      const start = await capture('POST', `/v2/${name}/blobs/uploads/`);
      expect((await replay(blobUploadUrl(), start)).status).toBe(202);
      const sessions = await uploadSessions();
      expectOciError(await replay(blobUploadUrl(), start), 401, 'UNAUTHORIZED');
      expect(await uploadSessions()).toBe(sessions);
    });

    it('refuses a replay of a captured read on the same replica (401)', async () => {
      const list = await capture('GET', `/v2/${name}/tags/list`);
      expect((await replay(manifestsUrl(), list)).status).toBe(200);
      expectOciError(await replay(manifestsUrl(), list), 401, 'UNAUTHORIZED');
    });

    it('refuses a request whose body length, type or framing differs from what was signed (401); the unchanged one still goes through', async () => {
      const put = await putOf('framing', first);
      const padded = Buffer.concat([first.manifest, Buffer.from('\n')]);
      expectOciError(await replay(manifestsUrl(), put, { body: padded }), 401, 'UNAUTHORIZED');
      const otherType = { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' };
      expectOciError(await replay(manifestsUrl(), put, { headers: otherType }), 401, 'UNAUTHORIZED');
      expectOciError(await replay(manifestsUrl(), put, { chunked: true }), 401, 'UNAUTHORIZED');
      expect((await c.call('GET', `/v2/${name}/manifests/framing`)).status).toBe(404);
      // A refused signature does not use up the nonce: the request as signed is taken once.
      expect((await replay(manifestsUrl(), put)).status).toBe(201);
      expect(await digestOf('framing')).toBe(first.digest);
    });
  });

  describe('starting a split app without http.secret', () => {
    const apps = ['gateway', 'blob-upload', 'manifests'] as const;
    const addrKey = (app: string) => (app === 'gateway' ? 'LADING_HTTP_ADDR' : `LADING_SERVICES_${app.replace('-', '').toUpperCase()}_ADDR`);
    const withoutSecret = () => Object.fromEntries(Object.entries(stack.env).filter(([k]) => k !== 'LADING_HTTP_SECRET'));

    it.each(apps)('%s refuses to start, and says which setting is missing and how to run without it', async (app) => {
      const port = await freePort();
      const { code, output } = await serveUntilExit(app, { ...withoutSecret(), [addrKey(app)]: `127.0.0.1:${port}` });
      expect(code).not.toBe(0);
      expect(output).toMatch(/http\.secret/);
      expect(output).toMatch(/LADING_HTTP_SECRET/);
      expect(output).toMatch(/LADING_HTTP_INSECURE=true/);
    });

    it.each(apps)('%s starts with http.insecure and logs a warning', async (app) => {
      const port = await freePort();
      const p = await startLading(app, { ...withoutSecret(), LADING_HTTP_INSECURE: 'true', [addrKey(app)]: `127.0.0.1:${port}` }, port);
      try {
        expect(p.log()).toMatch(/INSECURE MODE/);
        if (app === 'manifests') {
          // Unsigned requests are taken (they still carry the scope the gateway would build).
          const scope = encodeRequestScope(systemScope('catalog.list', null));
          expect((await fetch(`${p.url}/v2/_catalog`, { headers: { 'x-lading-scope': scope } })).status).toBe(200);
        }
      } finally {
        await p.stop();
      }
    });
  });

  describe('internal headers a client sends', () => {
    it('are dropped by the gateway: a forged scope naming another repository and a forged signature change nothing', async () => {
      const img = randomImage({ layers: 1, layerSize: 500 });
      for (const repo of ['hardening/forge-target', 'hardening/forge-victim']) {
        for (const b of [img.config, ...img.layers]) expect((await c.pushBlob(repo, b)).status).toBe(201);
      }
      const forgedScope = encodeRequestScope(systemScope('manifest.put', 'hardening/forge-victim', 'forged'));
      const forged = { 'x-lading-scope': forgedScope, 'x-lading-internal': `${Date.now()}.forged-nonce-of-22-chars.forged`, 'x-lading-extra': 'x' };
      const put = await c.call('PUT', '/v2/hardening/forge-target/manifests/v1', { headers: { ...forged, 'content-type': img.mediaType }, body: img.manifest });
      expect(put.status).toBe(201);
      expect((await c.call('GET', '/v2/hardening/forge-target/manifests/v1')).headers['docker-content-digest']).toBe(img.digest);
      expect((await c.call('GET', '/v2/hardening/forge-victim/manifests/v1')).status).toBe(404);
      // A read with a forged scope reads what its path names.
      const list = await c.call('GET', '/v2/hardening/forge-target/tags/list', { headers: forged });
      expect(list.json()).toEqual({ name: 'hardening/forge-target', tags: ['v1'] });
    });

    it('reach the services replaced by the gateway\'s own, signed with the stack secret', async () => {
      const tap = await RequestTap.start();
      const gateway = await stack.startExtra('gateway', { LADING_SERVICES_MANIFESTS_URL: tap.url, LADING_SERVICES_BLOBUPLOAD_URL: tap.url });
      try {
        const forgedScope = encodeRequestScope(systemScope('tags.list', 'hardening/forge-victim', 'forged'));
        await callAlone(gateway.url, 'GET', '/v2/hardening/forge-target/tags/list', {
          headers: { 'x-lading-scope': forgedScope, 'x-lading-internal': 'forged', 'x-lading-extra': 'x' },
        });
        const got = tap.last();
        const scope = decodeRequestScope(got.headers['x-lading-scope']);
        expect({ repository: scope.repository, requestId: scope.requestId === 'forged' }).toEqual({ repository: 'hardening/forge-target', requestId: false });
        expect(got.headers['x-lading-extra']).toBeUndefined();
        const parts = signedPartsOf('GET', got.url, got.headers['x-lading-scope'], got.headers, false);
        expect(verifyInternalRequest(stack.env.LADING_HTTP_SECRET, got.headers['x-lading-internal'], parts)).toBeDefined();
      } finally {
        await tap.close();
      }
    });
  });
});
