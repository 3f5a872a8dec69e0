/*
 * The robustness cases of split mode (restarts, kills, concurrency and bad input), written once
 * against a `RobustnessTarget`: the split stack on the filesystem and the replicated stack on
 * MinIO each run them from a spec of their own.
 */
import { randomUUID } from 'node:crypto';
import { indexOf, randomBlob, randomImage, RegistryTestClient, sha256, type TestResponse } from '@lading/testing';
import type { LadingProcess } from './registry-processes';
import {
  blobRowExists,
  callAlone,
  completeSession,
  contentRowCounts,
  expectAllHealthy,
  openSession,
  patchChunk,
  patchChunkAlone,
  reportedSize,
  sessionSizeInDb,
  leaseHeld,
  withDb,
  type KillSetup,
  type RobustnessTarget,
  type Session,
  type Takedown,
} from './robustness-stack';
import { hashStream, mib, rawExchange, RawRequest, RepeatedBlob, reuseAfter, throttled } from './robustness-streams';

const MiB = 1024 * 1024;
/** blob-upload's APPEND_IDLE_TIMEOUT_MS: an append that gets no bytes for this long gives up. */
const APPEND_IDLE_TIMEOUT_MS = 30_000;

/** `bytes` as a stream of `size`-byte slices (a body sent with chunked transfer encoding). */
async function* inSlices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** Expects an OCI error response: `status`, a JSON `{"errors":[…]}` body whose first code is `code`. */
function expectOciError(r: TestResponse, status: number, code: string): void {
  const detail = `${r.status} ${r.body.toString('utf8').slice(0, 300)}`;
  expect({ status: r.status, detail }).toEqual({ status, detail: expect.any(String) });
  expect(r.json().errors[0].code).toBe(code);
}

/** The request line and headers of a PATCH of `length` bytes at `start`, for a raw socket. */
function rawPatchHead(baseUrl: string, session: Session, start: number, length: number): string {
  return [
    `PATCH ${session.location} HTTP/1.1`,
    `Host: ${new URL(baseUrl).host}`,
    'Content-Type: application/octet-stream',
    `Content-Range: ${start}-${start + length - 1}`,
    `Content-Length: ${length}`,
  ].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Declares the robustness cases, `describe`d as `title`, on the target `start` makes (stopped afterwards). */
export function describeRobustness(title: string, start: () => Promise<RobustnessTarget>): void {
  describe(title, () => {
    let stack: RobustnessTarget;
    let c: RegistryTestClient;
    beforeAll(async () => {
      stack = await start();
      c = new RegistryTestClient(stack.url);
    });
    afterAll(async () => {
      await c?.close();
      await stack?.stop();
    });

    describe('a chunked upload survives a restart of blob-upload between two chunks', () => {
      it.each<Takedown>(['sigterm', 'sigkill'])('after %s the next chunk lands at the committed offset and the blob reads back whole', async (how) => {
        const name = `robust/restart-${how}`;
        const blob = randomBlob(3 * MiB + 4321);
        const cuts = [0, MiB + 7, 2 * MiB + 100, blob.size];
        const session = await openSession(c, name);

        const first = await patchChunk(c, session, 0, blob.bytes.subarray(cuts[0], cuts[1]), cuts[1] - cuts[0]);
        expect(first.status).toBe(202);
        expect(first.headers.range).toBe(`0-${cuts[1] - 1}`);

        await stack.restartBlobUploadThatServed(how, 'PATCH', session.location);

        // The new process has no hash state for the session: it must re-hash the stored bytes.
        expect(await reportedSize(c, session)).toBe(cuts[1]);
        const second = await patchChunk(c, session, cuts[1], blob.bytes.subarray(cuts[1], cuts[2]), cuts[2] - cuts[1]);
        expect(second.status).toBe(202);
        expect(second.headers.range).toBe(`0-${cuts[2] - 1}`);

        const done = await completeSession(c, session, blob.digest, blob.bytes.subarray(cuts[2]));
        expect(done.status).toBe(201);
        expect(done.headers['docker-content-digest']).toBe(blob.digest);

        const get = await c.call('GET', `/v2/${name}/blobs/${blob.digest}`);
        expect(get.status).toBe(200);
        expect(get.headers['docker-content-digest']).toBe(blob.digest);
        expect(get.body.length).toBe(blob.size);
        expect(get.body.equals(blob.bytes)).toBe(true);
        expect(await stack.storage.blobCopies(blob.digest)).toEqual([blob.size]);
        expect(await stack.storage.uploadBytes(session.id)).toBeUndefined();
        expect(await sessionSizeInDb(stack.databaseUrl, session.id)).toBeUndefined();
      });
    });

    describe('consecutive chunks of one upload on two blob-upload processes', () => {
      // Through two gateways, each reaching its own blob-upload process; the two share database and storage.
      let paths: { urls: [string, string]; close(): Promise<void> };
      let c1: RegistryTestClient;
      let c2: RegistryTestClient;
      beforeAll(async () => {
        paths = await stack.twoBlobUploads();
        c1 = new RegistryTestClient(paths.urls[0]);
        c2 = new RegistryTestClient(paths.urls[1]);
      });
      afterAll(async () => {
        await c1?.close();
        await c2?.close();
        await paths?.close();
      });

      it.each([
        ['the process that took the last chunk, with a final chunk in the PUT', 'last'],
        ['the other process, with an empty PUT', 'other'],
      ])('alternates 5 PATCHes between them and completes on %s', async (_label, completeOn) => {
        const name = `robust/two-processes-${completeOn}`;
        const blob = randomBlob(5 * MiB + 999);
        const cuts = [0, 700_001, 1_900_000, 2 * MiB + 3, 3 * MiB + 77, 4 * MiB + 5];
        if (completeOn === 'other') cuts.push(blob.size);
        const clients = [c1, c2];
        const session = await openSession(c1, name);
        for (let i = 0; i + 1 < cuts.length; i++) {
          const r = await patchChunk(clients[i % 2], session, cuts[i], blob.bytes.subarray(cuts[i], cuts[i + 1]), cuts[i + 1] - cuts[i]);
          expect({ chunk: i, status: r.status, range: r.headers.range }).toEqual({ chunk: i, status: 202, range: `0-${cuts[i + 1] - 1}` });
          // Both processes report the same committed size.
          expect(await reportedSize(clients[(i + 1) % 2], session)).toBe(cuts[i + 1]);
        }
        const lastChunkOn = (cuts.length - 2) % 2;
        const done =
          completeOn === 'last'
            ? await completeSession(clients[lastChunkOn], session, blob.digest, blob.bytes.subarray(cuts[cuts.length - 1]))
            : await completeSession(clients[1 - lastChunkOn], session, blob.digest);
        expect(done.status).toBe(201);
        for (const client of clients) {
          const get = await client.call('GET', `/v2/${name}/blobs/${blob.digest}`);
          expect(get.status).toBe(200);
          expect(get.body.equals(blob.bytes)).toBe(true);
        }
        expect(await stack.storage.blobCopies(blob.digest)).toEqual([blob.size]);
        expect(await stack.storage.uploadBytes(session.id)).toBeUndefined();
      });

      it('a second PATCH at the same offset while the first still streams on the other process is refused and cannot touch its bytes', async () => {
        const name = 'robust/overlapping-patches';
        const first = randomBlob(2 * MiB);
        const second = randomBlob(2 * MiB);
        const session = await openSession(c1, name);
        // The first PATCH goes through gateway 1 to blob-upload 1 and stalls after 256 KiB, holding
        // the session's writer lease (on S3 none of its bytes are stored yet: they wait for a part).
        const held = await RawRequest.open(paths.urls[0], rawPatchHead(paths.urls[0], session, 0, first.size));
        await held.write(first.bytes.subarray(0, 256 * 1024));
        for (let i = 0; !(await leaseHeld(stack.databaseUrl, session.id)); i++) {
          if (i > 100) throw new Error('the first PATCH never took the lease');
          await sleep(50);
        }
        // The second, through gateway 2 to blob-upload 2, must neither cut nor overwrite those bytes.
        const gateway2 = paths.urls[1];
        expectOciError(await patchChunkAlone(gateway2, session, 0, second.bytes), 416, 'RANGE_INVALID');
        const put = await callAlone(gateway2, 'PUT', `${session.location}?digest=${second.digest}`, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(second.size) },
          body: second.bytes,
        });
        expectOciError(put, 416, 'RANGE_INVALID');
        await held.write(first.bytes.subarray(256 * 1024));
        const answer = await held.response(30_000);
        held.destroy();
        expect(answer.status).toBe(202);
        expect(await reportedSize(c2, session)).toBe(first.size);
        const done = await completeSession(c2, session, first.digest);
        expect(done.status).toBe(201);
        const get = await c1.call('GET', `/v2/${name}/blobs/${first.digest}`);
        expect(get.body.equals(first.bytes)).toBe(true);
        expect(await stack.storage.blobCopies(second.digest)).toEqual([]);
      });
    });

    describe('kill -9 of blob-upload in the middle of large streamed PATCHes', () => {
      const size = 160 * MiB;
      const committedBefore = 4 * MiB + 11;

      /**
       * Opens one session per blob, commits a first small chunk in each, then streams the rest of
       * all of them at once through a gateway whose blob-upload process is the victim, and kills
       * that process once at least 24 MiB of every big chunk reached storage, while bytes are still
       * flowing; then restarts it in place (with replicas, after checking that the other one
       * serves the sessions meanwhile). Asserts that nothing became visible and that each session
       * still says what was committed before.
       */
      async function killMidPatches(name: string, blobs: RepeatedBlob[]): Promise<{ sessions: Session[]; digests: string[] }> {
        const digests = await Promise.all(blobs.map((b) => b.digest()));
        const sessions: Session[] = [];
        for (const blob of blobs) {
          const session = await openSession(c, name);
          expect((await patchChunk(c, session, 0, blob.slice(0, committedBefore), committedBefore)).status).toBe(202);
          sessions.push(session);
        }
        const setup: KillSetup = await stack.killSetup();
        const viaVictim = new RegistryTestClient(setup.url);
        let killed: Promise<void> | undefined;
        // Storage is looked at beside the streams (on S3 a look is a listing); each chunk sent
        // checks the latest look.
        let landed = false;
        let streaming = true;
        const watcher = (async () => {
          while (streaming && !landed) {
            const stored = await Promise.all(sessions.map((s) => stack.storage.uploadBytes(s.id)));
            landed = stored.every((n) => (n ?? 0) >= committedBefore + 24 * MiB);
            if (!landed) await sleep(50);
          }
        })();
        const outcomes = await Promise.all(
          blobs.map((blob, i) => {
            const body = throttled(blob.bytes(committedBefore, size), {
              slowAfter: 32 * MiB,
              delayMs: 15,
              onProgress: () => {
                if (!killed && landed) killed = setup.victim.kill9();
              },
            });
            return patchChunk(viaVictim, sessions[i], committedBefore, body, size - committedBefore).then(
              (r) => r.status,
              (e: Error) => e.message,
            );
          }),
        );
        streaming = false;
        await watcher;
        await viaVictim.close();
        expect(killed).toBeDefined();
        await killed;
        // The gateway answers for the dead service (503) or the connection drops: anything but success.
        for (const outcome of outcomes) expect(outcome).not.toBe(202);
        const stored = await Promise.all(sessions.map((s) => stack.storage.uploadBytes(s.id)));
        console.log(`kill -9 mid-PATCH left ${stored.map((n) => mib((n ?? 0) - committedBefore)).join(' and ')} MiB past the committed size in storage`);

        if (setup.othersServe) {
          // The gateways' connections to the dead process are cut by now (the balancer sends new
          // ones to the live replica); one reused in the instant of the kill would get 503.
          await sleep(300);
          for (const session of sessions) expect(await reportedSize(c, session)).toBe(committedBefore);
        }
        await setup.restart();
        for (const [i, session] of sessions.entries()) {
          expect(await reportedSize(c, session)).toBe(committedBefore);
          expect(await sessionSizeInDb(stack.databaseUrl, session.id)).toBe(committedBefore);
          expect((await c.call('HEAD', `/v2/${name}/blobs/${digests[i]}`)).status).toBe(404);
          expect(await blobRowExists(stack.databaseUrl, digests[i])).toBe(false);
        }
        return { sessions, digests };
      }

      async function expectBlobReadsBack(name: string, digest: string, expectedSize: number): Promise<void> {
        const res = await fetch(`${stack.url}/v2/${name}/blobs/${digest}`);
        expect(res.status).toBe(200);
        expect(Number(res.headers.get('content-length'))).toBe(expectedSize);
        const read = await hashStream(res.body as unknown as AsyncIterable<Uint8Array>);
        expect(read).toEqual({ digest, size: expectedSize });
        // One stored copy of exactly the verified bytes: no tail of an interrupted append came along.
        expect(await stack.storage.blobCopies(digest)).toEqual([expectedSize]);
      }

      it('the dead append\'s bytes are left alone while its writer\'s lease lasts, then cut: one session resumes from its reported offset, the other completes at it', async () => {
        const name = 'robust/kill-resume';
        const blobs = [new RepeatedBlob(size), new RepeatedBlob(size)];
        const { sessions, digests } = await killMidPatches(name, blobs);
        const [resumed, completed] = sessions;
        const probe = (from: number) => patchChunkAlone(stack.url, resumed, from, blobs[0].slice(from, from + MiB));

        // The killed writer's lease has not lapsed: its bytes may belong to an append still running
        // on another process, so hands off.
        const deadLease = await withDb(stack.databaseUrl, async (db) => {
          const { rows } = await db.query('SELECT lease_until::text AS until, lease_until > now() AS live FROM upload_sessions WHERE id = $1', [resumed.id]);
          return rows[0] as { until: string | null; live: boolean };
        });
        expect(deadLease.until).not.toBeNull();
        expectOciError(await probe(committedBefore), 416, 'RANGE_INVALID');
        const prefixDigest = await blobs[1].digest(0, committedBefore);
        expectOciError(await completeSession(c, completed, prefixDigest), 416, 'RANGE_INVALID');
        expect(await reportedSize(c, resumed)).toBe(committedBefore);

        // Once the lease lapsed (by the database's clock: no process clock or file time involved),
        // the tail is known dead, is cut, and the sessions carry on.
        let first: TestResponse;
        const deadline = Date.now() + 150_000;
        for (;;) {
          first = await probe(committedBefore);
          if (first.status !== 416) break;
          expect(Date.now()).toBeLessThan(deadline);
          await sleep(2_000);
        }
        const cutAfterLapse = await withDb(stack.databaseUrl, async (db) => {
          const { rows } = await db.query('SELECT updated_at >= $2::timestamptz AS after FROM upload_sessions WHERE id = $1', [resumed.id, deadLease.until]);
          return rows[0].after as boolean;
        });
        expect(cutAfterLapse).toBe(true);
        expect(first.status).toBe(202);
        const from = committedBefore + MiB;
        const rest = await patchChunk(c, resumed, from, blobs[0].bytes(from, size), size - from);
        expect({ status: rest.status, body: rest.body.toString() }).toEqual({ status: 202, body: '' });
        expect(rest.headers.range).toBe(`0-${size - 1}`);
        expect(await blobRowExists(stack.databaseUrl, digests[0])).toBe(false);
        expect((await completeSession(c, resumed, digests[0])).status).toBe(201);
        await expectBlobReadsBack(name, digests[0], size);

        expect((await completeSession(c, completed, prefixDigest)).status).toBe(201);
        await expectBlobReadsBack(name, prefixDigest, committedBefore);
        // Committing removed each upload whole, the dead append's unfinished part included.
        for (const session of sessions) expect(await stack.storage.uploadBytes(session.id)).toBeUndefined();
      });

      it('a new upload of the same blob right after the kill succeeds, and the dead session can be cancelled', async () => {
        const name = 'robust/kill-retry';
        const blob = new RepeatedBlob(size);
        const {
          sessions: [session],
          digests: [digest],
        } = await killMidPatches(name, [blob]);
        const retry = await c.call('POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
          body: blob.bytes(),
        });
        expect(retry.status).toBe(201);
        await expectBlobReadsBack(name, digest, size);
        expect((await c.call('DELETE', session.location)).status).toBe(204);
        expect(await stack.storage.uploadBytes(session.id)).toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('16 concurrent uploads of one blob to 16 repositories all succeed and leave one stored copy', async () => {
        const blob = randomBlob(2 * MiB + 5);
        const uploadsBefore = new Set(await stack.storage.uploads());
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => {
            const name = `robust/same-blob-${i}`;
            // Half push in two requests (POST, PUT), half in one (POST ?digest=).
            return i % 2 === 0
              ? c.pushBlob(name, blob)
              : c.call('POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, {
                  headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
                  body: blob.bytes,
                });
          }),
        );
        expect(results.map((r) => r.status)).toEqual(Array(16).fill(201));
        for (let i = 0; i < 16; i++) {
          const head = await c.call('HEAD', `/v2/robust/same-blob-${i}/blobs/${blob.digest}`);
          expect(head.status).toBe(200);
          expect(head.headers['content-length']).toBe(String(blob.size));
        }
        expect(await stack.storage.blobCopies(blob.digest)).toEqual([blob.size]);
        expect((await stack.storage.uploads()).filter((id) => !uploadsBefore.has(id))).toEqual([]);
        const get = await c.call('GET', `/v2/robust/same-blob-7/blobs/${blob.digest}`);
        expect(get.body.equals(blob.bytes)).toBe(true);
      });

      it('16 concurrent pushes of different images to one repository all succeed and all 16 tags list', async () => {
        const name = 'robust/many-images';
        const images = Array.from({ length: 16 }, () => randomImage({ layers: 2, layerSize: 64 * 1024 }));
        const results = await Promise.all(images.map((img, i) => c.pushImage(name, img, `t${String(i).padStart(2, '0')}`)));
        expect(results.map((r) => r.status)).toEqual(Array(16).fill(201));
        const tags = (await c.call('GET', `/v2/${name}/tags/list`)).json().tags;
        expect(tags).toEqual(Array.from({ length: 16 }, (_, i) => `t${String(i).padStart(2, '0')}`));
        for (const [i, img] of images.entries()) {
          const m = await c.call('GET', `/v2/${name}/manifests/t${String(i).padStart(2, '0')}`, {
            headers: { accept: img.mediaType },
          });
          expect(m.headers['docker-content-digest']).toBe(img.digest);
        }
      });
    });

    describe('bad input changes nothing and never answers 5xx', () => {
      const name = 'robust/bad-input';
      let session: Session;
      let committed: number;
      let before: Record<string, number>;
      let uploadsBefore: Set<string>;
      const pending = randomBlob(64 * 1024);
      const stored = randomBlob(4096);
      const tagged = randomImage({ layers: 0 });

      beforeAll(async () => {
        expect((await c.pushBlob(name, stored)).status).toBe(201);
        expect((await c.pushBlob(name, tagged.config)).status).toBe(201);
        session = await openSession(c, name);
        committed = 10_000;
        expect((await patchChunk(c, session, 0, pending.bytes.subarray(0, committed), committed)).status).toBe(202);
        before = await contentRowCounts(stack.databaseUrl);
        uploadsBefore = new Set(await stack.storage.uploads());
      });

      afterAll(async () => {
        // Nothing the batch sent crashed or wedged a process, and no content row appeared or vanished.
        await expectAllHealthy(stack.processes());
        const after = await contentRowCounts(stack.databaseUrl);
        expect({ ...after, repositories: 0 }).toEqual({ ...before, repositories: 0 });
      });

      const host = () => new URL(stack.url).host;

      it.each<'end' | 'destroy'>(['end', 'destroy'])(
        'a PATCH body shorter than its Content-Length (socket %s) leaves the session where it was',
        async (close) => {
          const ex = await rawExchange(
            stack.url,
            [
              `PATCH ${session.location} HTTP/1.1`,
              `Host: ${host()}`,
              'Content-Type: application/octet-stream',
              `Content-Range: ${committed}-${committed + 999}`,
              'Content-Length: 1000',
            ].join('\n'),
            pending.bytes.subarray(committed, committed + 10),
            { close },
          );
          if (ex.status !== undefined) expect(ex.status).toBeLessThan(500);
          expect(await reportedSize(c, session)).toBe(committed);
          expect(await sessionSizeInDb(stack.databaseUrl, session.id)).toBe(committed);
          // The next well-formed chunk at the same offset goes in: no stray bytes are in the way.
          // With replicas it may reach another process while the broken request's append is still
          // letting go of the session (the gateway answered the client at once): until then the
          // session's lease makes it 416 RANGE_INVALID with the committed size, which says retry.
          // On one process the next request waits for the append to let go: no retry there.
          const next = committed + 5000;
          let ok: TestResponse;
          for (let tries = 1; ; tries++) {
            ok = await patchChunk(c, session, committed, pending.bytes.subarray(committed, next), next - committed);
            if (ok.status !== 416 || !stack.spreadsRequests || tries === 50) break;
            const error = ok.json().errors[0];
            expect({ code: error.code, size: error.detail?.size }).toEqual({ code: 'RANGE_INVALID', size: committed });
            await sleep(100);
          }
          expect(ok.status).toBe(202);
          committed = next;
        },
      );

      it.each<'end' | 'destroy'>(['end', 'destroy'])(
        'a monolithic POST body shorter than its Content-Length (socket %s) stores nothing',
        async (close) => {
          const blob = randomBlob(1000);
          const ex = await rawExchange(
            stack.url,
            [
              `POST /v2/${name}/blobs/uploads/?digest=${blob.digest} HTTP/1.1`,
              `Host: ${host()}`,
              'Content-Type: application/octet-stream',
              'Content-Length: 1000',
            ].join('\n'),
            blob.bytes.subarray(0, 10),
            { close },
          );
          if (ex.status !== undefined) expect(ex.status).toBeLessThan(500);
          expect((await c.call('HEAD', `/v2/${name}/blobs/${blob.digest}`)).status).toBe(404);
          expect(await stack.storage.blobCopies(blob.digest)).toEqual([]);
          // The private upload area of the failed request is removed (asynchronously, once the
          // service sees the body end).
          const deadline = Date.now() + 5_000;
          const strays = async () => (await stack.storage.uploads()).filter((id) => !uploadsBefore.has(id) && id !== session.id);
          let stray = await strays();
          while (stray.length > 0 && Date.now() < deadline) {
            await sleep(100);
            stray = await strays();
          }
          expect(stray).toEqual([]);
        },
      );

      it('a PATCH whose body stalls is given up after the idle timeout (400), leaving the session where it was', async () => {
        const held = await RawRequest.open(stack.url, rawPatchHead(stack.url, session, committed, 10_000));
        await held.write(pending.bytes.subarray(committed, committed + 1000));
        const started = Date.now();
        const answer = await held.response(APPEND_IDLE_TIMEOUT_MS + 20_000);
        held.destroy();
        expect(answer.status).toBe(400);
        expect(answer.response).toContain('BLOB_UPLOAD_INVALID');
        expect(Date.now() - started).toBeGreaterThanOrEqual(APPEND_IDLE_TIMEOUT_MS - 1_000);
        expect(await reportedSize(c, session)).toBe(committed);
        // The abandoned append cut its bytes back itself: the next chunk goes in at once.
        const next = committed + 5000;
        expect((await patchChunk(c, session, committed, pending.bytes.subarray(committed, next), next - committed)).status).toBe(202);
        committed = next;
      }, 120_000);

      it('a chunk whose Content-Range does not start at the committed size is 416 and changes nothing', async () => {
        for (const start of [0, committed - 1, committed + 1]) {
          const r = await patchChunk(c, session, start, pending.bytes.subarray(0, 100), 100);
          expectOciError(r, 416, 'RANGE_INVALID');
        }
        const malformed = await c.call('PATCH', session.location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': 'bytes=zz-1', 'content-length': '1' },
          body: Buffer.from('x'),
        });
        expectOciError(malformed, 400, 'BLOB_UPLOAD_INVALID');
        const mismatch = await c.call('PATCH', session.location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${committed}-${committed + 9}`, 'content-length': '5' },
          body: Buffer.from('12345'),
        });
        expectOciError(mismatch, 400, 'BLOB_UPLOAD_INVALID');
        expect(await reportedSize(c, session)).toBe(committed);
      });

      it('a digest mismatch is 400 DIGEST_INVALID and makes nothing visible', async () => {
        const wrong = randomBlob(32).digest;
        const s = await openSession(c, name);
        const r = await completeSession(c, s, wrong, pending.bytes.subarray(0, 3000));
        expectOciError(r, 400, 'DIGEST_INVALID');
        const mono = await c.call('POST', `/v2/${name}/blobs/uploads/?digest=${wrong}`, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': '3000' },
          body: pending.bytes.subarray(0, 3000),
        });
        expectOciError(mono, 400, 'DIGEST_INVALID');
        for (const d of [wrong, sha256(pending.bytes.subarray(0, 3000))]) {
          expect((await c.call('HEAD', `/v2/${name}/blobs/${d}`)).status).toBe(404);
          expect(await blobRowExists(stack.databaseUrl, d)).toBe(false);
        }
        await c.call('DELETE', s.location);
      });

      it('an unknown upload id is 404 BLOB_UPLOAD_UNKNOWN on every method', async () => {
        for (const id of [randomUUID(), 'not-a-uuid', session.id.toUpperCase()]) {
          const location = `/v2/${name}/blobs/uploads/${id}`;
          expectOciError(await c.call('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
          expectOciError(
            await c.call('PATCH', location, { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('abc') }),
            404,
            'BLOB_UPLOAD_UNKNOWN',
          );
          expectOciError(await c.call('PUT', `${location}?digest=${stored.digest}`), 404, 'BLOB_UPLOAD_UNKNOWN');
          expectOciError(await c.call('DELETE', location), 404, 'BLOB_UPLOAD_UNKNOWN');
        }
        // The session of another repository is unknown here too.
        expectOciError(await c.call('GET', `/v2/robust/elsewhere/blobs/uploads/${session.id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      });

      it.each([
        ['upper case', '/v2/Robust/Upper/blobs/uploads/'],
        ['an encoded ".." segment', '/v2/robust/%2e%2e/escape/blobs/uploads/'],
        ['an encoded "../" path', '/v2/robust/%2e%2e%2fescape/blobs/uploads/'],
        ['a name over 255 characters', `/v2/robust/${'a'.repeat(250)}/blobs/uploads/`],
        ['a trailing separator', '/v2/robust-/blobs/uploads/'],
      ])('a repository name with %s is 400 NAME_INVALID', async (_label, path) => {
        expectOciError(await c.call('POST', path), 400, 'NAME_INVALID');
        const manifestPath = path.replace(/blobs\/uploads\/$/, 'manifests/latest');
        const img = randomImage({ layers: 0 });
        expectOciError(
          await c.call('PUT', manifestPath, { headers: { 'content-type': img.mediaType }, body: img.manifest }),
          400,
          'NAME_INVALID',
        );
      });

      it.each(['-leading-dash', '.leading-dot', 't'.repeat(129), 'bad%20space', 'a%2fb'])('the tag %s is 400 TAG_INVALID', async (tag) => {
        expectOciError(await c.putManifest(name, tag, tagged.manifest, tagged.mediaType), 400, 'TAG_INVALID');
      });

      it('malformed and truncated manifest JSON is 400 MANIFEST_INVALID', async () => {
        const img = randomImage({ layers: 1 });
        const bodies = [
          img.manifest.subarray(0, img.manifest.length - 7),
          Buffer.from('{'),
          Buffer.from(''),
          Buffer.from('null'),
          Buffer.from('[1,2,3]'),
          Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":7}'),
          Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
        ];
        for (const body of bodies) {
          const r = await c.putManifest(name, 'broken', body, img.mediaType);
          expectOciError(r, 400, 'MANIFEST_INVALID');
        }
        expectOciError(await c.call('GET', `/v2/${name}/manifests/broken`), 404, 'MANIFEST_UNKNOWN');
      });

      it('a manifest referencing a missing blob, or an index a missing child, is 400 MANIFEST_BLOB_UNKNOWN', async () => {
        const img = randomImage({ layers: 2 });
        // Config and first layer stored, second layer not.
        expect((await c.pushBlob(name, img.config)).status).toBe(201);
        expect((await c.pushBlob(name, img.layers[0])).status).toBe(201);
        expectOciError(await c.putManifest(name, 'missing-layer', img.manifest, img.mediaType), 400, 'MANIFEST_BLOB_UNKNOWN');
        // A blob stored only in another repository does not count either.
        expect((await c.pushBlob('robust/other-repo', img.layers[1])).status).toBe(201);
        expectOciError(await c.putManifest(name, 'missing-layer', img.manifest, img.mediaType), 400, 'MANIFEST_BLOB_UNKNOWN');
        const child = randomImage({ layers: 0 });
        const index = indexOf([{ digest: child.digest, size: child.manifest.length, mediaType: child.mediaType }]);
        expectOciError(await c.putManifest(name, 'missing-child', index.manifest, index.mediaType), 400, 'MANIFEST_BLOB_UNKNOWN');
        // The blobs pushed above are legitimate content; count them into the baseline.
        before = await contentRowCounts(stack.databaseUrl);
      });

      it('an unsupported or malformed digest is 400 DIGEST_INVALID wherever a digest goes in', async () => {
        const md5 = 'md5:0123456789abcdef0123456789abcdef';
        const img = randomImage({ layers: 1 });
        const cases: [string, TestResponse][] = [
          ['GET blob', await c.call('GET', `/v2/${name}/blobs/${md5}`)],
          [
            'monolithic POST',
            await c.call('POST', `/v2/${name}/blobs/uploads/?digest=${md5}`, {
              headers: { 'content-type': 'application/octet-stream', 'content-length': '3' },
              body: Buffer.from('abc'),
            }),
          ],
          ['completing PUT', await completeSession(c, await openSession(c, name), md5, Buffer.from('abc'))],
          ['GET blob, non-hex sha256', await c.call('GET', `/v2/${name}/blobs/sha256:${'z'.repeat(64)}`)],
          ['GET blob, short sha256', await c.call('GET', `/v2/${name}/blobs/sha256:abc`)],
          ['PUT manifest by md5 reference', await c.putManifest(name, md5, img.manifest, img.mediaType)],
          [
            'PUT manifest with an md5 layer',
            await c.putManifest(name, 'md5-layer', Buffer.from(img.manifest.toString().replace(img.layers[0].digest, md5)), img.mediaType),
          ],
        ];
        for (const [label, r] of cases) {
          expect({ label, status: r.status, code: r.json().errors[0].code }).toEqual({ label, status: 400, code: 'DIGEST_INVALID' });
        }
        // HEAD has no body to carry the code; a manifest GET by an unusable digest finds nothing.
        expect((await c.call('HEAD', `/v2/${name}/blobs/${md5}`)).status).toBe(400);
        expectOciError(await c.call('GET', `/v2/${name}/manifests/${md5}`), 404, 'MANIFEST_UNKNOWN');
      });

      /*
       * Answers given before the request body was read. Run against a gateway, blob-upload and
       * manifests of their own, because a regression here leaves keep-alive connections unusable
       * and would stall the other tests.
       *
       * These were bugs: the gateway answered with keep-alive while the client's unread body
       * blocked the connection (the next request hung), and the manifests service destroyed a
       * refused streamed body, poisoning the gateway's pooled connection. Errors found before
       * the body was read now drain it (up to a bound; past it the answer closes the connection).
       */
      describe('answers given before the body was read', () => {
        let isolated: LadingProcess[] = [];
        let url: string;
        const big = Buffer.alloc(8 * MiB, 7);
        const img = randomImage({ layers: 0 });
        const huge = Buffer.concat([img.manifest.subarray(0, img.manifest.length - 1), Buffer.from(`,"x":"${'x'.repeat(5 * MiB)}"}`)]);

        beforeAll(async () => {
          const bu = await stack.startExtra('blob-upload');
          const mf = await stack.startExtra('manifests');
          const gw = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: bu.url, LADING_SERVICES_MANIFESTS_URL: mf.url });
          isolated = [bu, mf, gw];
          url = gw.url;
        });
        afterAll(async () => {
          await expectAllHealthy(isolated);
          await Promise.all(isolated.map((p) => p.stop()));
        });

        it.each([
          ['404 to a PATCH of an unknown upload', 404, () => ({ method: 'PATCH', path: `/v2/${name}/blobs/uploads/${randomUUID()}`, body: big })],
          [
            '416 to a PATCH at the wrong offset',
            416,
            () => ({ method: 'PATCH', path: session.location, headers: { 'content-range': `1-${big.length}` }, body: big }),
          ],
          ['413 to an oversized manifest', 413, () => ({ method: 'PUT', path: `/v2/${name}/manifests/big`, body: big })],
          ['400 to a monolithic upload with an unsupported digest', 400, () => ({ method: 'POST', path: `/v2/${name}/blobs/uploads/?digest=md5:0123`, body: big })],
        ])('after the %s, sent before its 8 MiB body was read, the same connection serves the next request', async (_label, status, request) => {
          const { first, next } = await reuseAfter(url, { headers: { 'content-type': 'application/octet-stream' }, ...request() });
          expect({ first, next }).toEqual({ first: status, next: 200 });
        });

        it('an oversized manifest is 413, declared or streamed, and is not stored', async () => {
          const declared = await reuseAfter(url, { method: 'PUT', path: `/v2/${name}/manifests/huge`, headers: { 'content-type': img.mediaType }, body: huge });
          expect(declared.first).toBe(413);
          const streamed = await reuseAfter(url, {
            method: 'PUT',
            path: `/v2/${name}/manifests/huge`,
            headers: { 'content-type': img.mediaType },
            body: inSlices(huge, 64 * 1024),
          });
          expect(streamed.first).toBe(413);
          const rows = await withDb(stack.databaseUrl, (db) => db.query('SELECT 1 FROM manifests WHERE digest = $1', [sha256(huge)]));
          expect(rows.rowCount).toBe(0);
        });

        // Runs after the streamed 413 above, on the gateway connection to manifests that it left behind.
        it('after a streamed oversized manifest was refused, the next manifest request is answered at once', async () => {
          const res = await fetch(`${url}/v2/${name}/manifests/huge`, { signal: AbortSignal.timeout(10_000) }).then(
            (r) => r.status,
            (e: Error) => e.name,
          );
          expect(res).toBe(404);
        });
      });
    });
  });
}
