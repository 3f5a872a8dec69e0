import { randomUUID } from 'node:crypto';
import { createSHA256 } from 'hash-wasm';
import { CRASH_POINTS, type CrashPoint } from '@lading/contracts';
import { S3BlobStorage } from '@lading/storage';
import { randomBlob, RegistryTestClient, sha256, type TestResponse } from '@lading/testing';
import { startSplit, type LadingProcess, type SplitStack } from '../support/registry-processes';
import { completeSession, openSession, patchChunk, reportedSize, withDb, type Session } from '../support/robustness-stack';
import { hashStream, RawRequest } from '../support/robustness-streams';
import { purgeS3Root, s3RegistryEnv, testS3Options } from '../support/s3';

const MiB = 1024 * 1024;

/** The saved hash-wasm sha256 state of `bytes` (what a replica records with a session). */
async function stateOf(bytes: Buffer): Promise<Buffer> {
  const h = await createSHA256();
  h.init();
  h.update(bytes);
  return Buffer.from(h.save());
}

/** The sha256 digest a saved state stands for (states hold scratch bytes too: compare digests, not states). */
async function digestOfState(state: Buffer): Promise<string> {
  const h = await createSHA256();
  h.load(state);
  return `sha256:${h.digest('hex')}`;
}

interface Checkpoint {
  impl: string | null;
  offset: number | null;
  state: Buffer | null;
  size: number;
}

/**
 * Uploads on two blob-upload replicas (each behind its own gateway) sharing one PostgreSQL and
 * one MinIO bucket, nothing else: the hash checkpoint that lets a chunk or the final PUT continue
 * on the other replica without re-reading the upload, and a kill -9 of the replica doing the work
 * at every step of an upload (a test-only crash point, `LADING_TEST_CRASH_AT`), after which the
 * other replica finishes the upload as a client's retry would, with every acknowledged byte, no
 * blob stored under a digest its bytes do not have, and nothing left in the bucket.
 */
describe('uploads on two blob-upload replicas on PostgreSQL and MinIO', () => {
  const rootDirectory = `replicas/${randomUUID()}`;
  const storage = new S3BlobStorage(testS3Options(rootDirectory));
  let stack: SplitStack;
  let extras: LadingProcess[] = [];
  let c1: RegistryTestClient;
  let c2: RegistryTestClient;

  beforeAll(async () => {
    // Blob GETs stream (the 307 to MinIO is tested in registry-s3): the test reads back through each replica.
    stack = await startSplit({ env: { ...s3RegistryEnv(rootDirectory), LADING_STORAGE_REDIRECT_DISABLE: 'true' }, withWorkers: false });
    const bu2 = await stack.startExtra('blob-upload');
    const gw2 = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: bu2.url });
    extras = [bu2, gw2];
    c1 = new RegistryTestClient(stack.url);
    c2 = new RegistryTestClient(gw2.url);
  }, 120_000);

  afterAll(async () => {
    await c1?.close();
    await c2?.close();
    await Promise.all(extras.map((p) => p.stop()));
    await stack?.stop();
    await purgeS3Root(rootDirectory);
  });

  const checkpointOf = (id: string): Promise<Checkpoint> =>
    withDb(stack.databaseUrl, async (db) => {
      const { rows } = await db.query(
        'SELECT hash_impl AS impl, hash_offset::float8 AS offset, hash_state AS state, size::float8 AS size FROM upload_sessions WHERE id = $1',
        [id],
      );
      return rows[0] as Checkpoint;
    });
  const setCheckpoint = (id: string, c: { impl: string; offset: number; state: Buffer }): Promise<void> =>
    withDb(stack.databaseUrl, async (db) => {
      await db.query('UPDATE upload_sessions SET hash_impl = $2, hash_offset = $3, hash_state = $4 WHERE id = $1', [id, c.impl, c.offset, c.state]);
    });

  async function expectBlob(c: RegistryTestClient, name: string, blob: { digest: string; bytes: Buffer }): Promise<void> {
    const get = await c.call('GET', `/v2/${name}/blobs/${blob.digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(blob.bytes)).toBe(true);
  }

  /** Every blob in the bucket holds bytes whose digest is its key, and no upload or multipart upload is left. */
  async function expectBucketSound(): Promise<void> {
    for await (const digest of storage.listBlobs()) {
      const read = await hashStream(await storage.readBlob(digest));
      expect(read.digest).toBe(digest);
    }
    expect((await storage.keys()).filter((k) => !k.startsWith('blobs/'))).toEqual([]);
  }

  describe('the hash checkpoint', () => {
    it('is recorded with each PATCH, and the PUT on the other replica continues from it instead of re-reading the upload', async () => {
      const name = 'replicas/checkpoint';
      const blob = randomBlob(7 * MiB + 3);
      /** A session of `blob` pushed in two PATCHes on replica 1, its checkpoint checked after each. */
      async function pushedOnReplica1(): Promise<{ session: Session; recorded: Checkpoint }> {
        const session = await openSession(c1, name);
        expect((await patchChunk(c1, session, 0, blob.bytes.subarray(0, 3 * MiB), 3 * MiB)).status).toBe(202);
        const first = await checkpointOf(session.id);
        expect(first).toMatchObject({ impl: 'hash-wasm@4.13.0/sha256', offset: 3 * MiB, size: 3 * MiB });
        expect(await digestOfState(first.state!)).toBe(sha256(blob.bytes.subarray(0, 3 * MiB)));
        expect((await patchChunk(c1, session, 3 * MiB, blob.bytes.subarray(3 * MiB), blob.size - 3 * MiB)).status).toBe(202);
        const recorded = await checkpointOf(session.id);
        expect(recorded).toMatchObject({ offset: blob.size, size: blob.size });
        expect(await digestOfState(recorded.state!)).toBe(blob.digest);
        return { session, recorded };
      }

      // The other replica trusts the checkpoint, without reading the stored bytes: given the
      // state of other bytes of the same length, it computes another digest and refuses the PUT.
      const tampered = await pushedOnReplica1();
      const other = randomBlob(blob.size);
      await setCheckpoint(tampered.session.id, { impl: tampered.recorded.impl!, offset: blob.size, state: await stateOf(other.bytes) });
      const refused = await completeSession(c2, tampered.session, blob.digest);
      expect(refused.status).toBe(400);
      expect(refused.json().errors[0]).toMatchObject({ code: 'DIGEST_INVALID', detail: { expected: blob.digest, actual: other.digest } });
      expect((await c1.call('DELETE', tampered.session.location)).status).toBe(204);

      // With the checkpoint as recorded, the PUT on the other replica commits the blob.
      const { session } = await pushedOnReplica1();
      expect((await completeSession(c2, session, blob.digest)).status).toBe(201);
      await expectBlob(c1, name, blob);
      await expectBlob(c2, name, blob);
    });

    it("continues from an older checkpoint that covers half the upload or more, and re-hashes everything when it covers less or is another build's", async () => {
      const name = 'replicas/older-checkpoint';
      const blob = randomBlob(9 * MiB + 77);
      const session = await openSession(c1, name);
      const patch = (c: RegistryTestClient, from: number, to: number) => patchChunk(c, session, from, blob.bytes.subarray(from, to), to - from);
      const expectCheckpoint = async (offset: number) => {
        const recorded = await checkpointOf(session.id);
        expect(recorded.offset).toBe(offset);
        expect(await digestOfState(recorded.state!)).toBe(sha256(blob.bytes.subarray(0, offset)));
      };
      expect((await patch(c1, 0, 6 * MiB)).status).toBe(202);

      // As if the shadow had stopped short: the checkpoint lags the session, but covers over half.
      const cut = 4 * MiB + 11;
      await setCheckpoint(session.id, { impl: 'hash-wasm@4.13.0/sha256', offset: cut, state: await stateOf(blob.bytes.subarray(0, cut)) });
      expect((await patch(c2, 6 * MiB, 7 * MiB)).status).toBe(202);
      await expectCheckpoint(7 * MiB);

      // One that covers less than half is not even loaded (a bogus one here): re-hashed from the bytes.
      await setCheckpoint(session.id, { impl: 'hash-wasm@4.13.0/sha256', offset: MiB, state: await stateOf(randomBlob(MiB).bytes) });
      expect((await patch(c1, 7 * MiB, 8 * MiB)).status).toBe(202);
      await expectCheckpoint(8 * MiB);

      // A state some other hash-wasm build wrote is never loaded: the replica re-hashes instead.
      await setCheckpoint(session.id, { impl: 'hash-wasm@0.0.1/sha256', offset: 8 * MiB, state: await stateOf(randomBlob(8 * MiB).bytes) });
      expect((await completeSession(c2, session, blob.digest, blob.bytes.subarray(8 * MiB))).status).toBe(201);
      await expectBlob(c1, name, blob);
      await expectBucketSound();
    });
  });

  describe('racing writers on the two replicas', () => {
    const ROUNDS = 8;
    const gateways = () => [stack.url, extras[1].url];

    /** A request head for a raw socket: PATCH of `length` bytes at `start`, or the closing PUT with its last chunk. */
    function head(session: Session, method: 'PATCH' | 'PUT', start: number, length: number, digest?: string): string {
      const path = digest ? `${session.location}${session.location.includes('?') ? '&' : '?'}digest=${digest}` : session.location;
      return [
        `${method} ${path} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Content-Type: application/octet-stream',
        ...(method === 'PATCH' ? [`Content-Range: ${start}-${start + length - 1}`] : []),
        `Content-Length: ${length}`,
      ].join('\n');
    }

    /**
     * Sends two requests at once, one through each replica, each holding back the rest of its
     * body after the first 256 KiB until both are under way, then finishing both; their statuses.
     */
    async function race(a: { head: string; body: Buffer }, b: { head: string; body: Buffer }): Promise<number[]> {
      const [ga, gb] = gateways();
      const held = [await RawRequest.open(ga, a.head), await RawRequest.open(gb, b.head)];
      const bodies = [a.body, b.body];
      await Promise.all(held.map((r, i) => r.write(bodies[i].subarray(0, 256 * 1024))));
      await Promise.all(held.map((r, i) => r.write(bodies[i].subarray(256 * 1024)).catch(() => undefined)));
      const answers = await Promise.all(held.map((r) => r.response(60_000).then((x) => x.status ?? 0, () => 0)));
      held.forEach((r) => r.destroy());
      return answers;
    }

    /** After a race: the session's committed bytes are exactly one of the candidates' (prefix + body). */
    async function committedIs(session: Session, prefix: Buffer, candidates: Buffer[]): Promise<Buffer> {
      const size = await reportedSize(c1, session);
      const tail = candidates.find((b) => prefix.length + b.length === size);
      expect(tail).toBeDefined();
      return Buffer.concat([prefix, tail!]);
    }

    it(`two PATCHes of the same range, bodies held back, through different replicas: one lands, the other is refused, ${ROUNDS} rounds`, async () => {
      const name = 'replicas/race-patch';
      for (let round = 0; round < ROUNDS; round++) {
        const prefix = randomBlob(1 * MiB + round).bytes;
        const [x, y] = [randomBlob(3 * MiB), randomBlob(3 * MiB)];
        const session = await openSession(c1, name);
        expect((await patchChunk(c1, session, 0, prefix, prefix.length)).status).toBe(202);
        const answers = await race(
          { head: head(session, 'PATCH', prefix.length, x.size), body: x.bytes },
          { head: head(session, 'PATCH', prefix.length, y.size), body: y.bytes },
        );
        // The loser is refused before it writes (416: the session is leased, or its size moved), not
        // after (its bytes stored, then dropped): one writer per session.
        expect([...answers].sort()).toEqual([202, 416]);
        const bytes = await committedIs(session, prefix, [answers[0] === 202 ? x.bytes : y.bytes]);
        const whole = { digest: sha256(bytes), bytes };
        // The final PUT on the replica that lost the race: it must hash what was committed.
        const loserClient = answers[0] === 202 ? c2 : c1;
        expect((await completeSession(loserClient, session, whole.digest)).status).toBe(201);
        await expectBlob(c1, name, whole);
      }
      await expectBucketSound();
    });

    it(`a closing PUT with its last chunk racing a PATCH of the same range on the other replica, ${ROUNDS} rounds`, async () => {
      const name = 'replicas/race-put-patch';
      for (let round = 0; round < ROUNDS; round++) {
        const prefix = randomBlob(2 * MiB + round).bytes;
        const [x, y] = [randomBlob(3 * MiB), randomBlob(3 * MiB)];
        const withX = sha256(Buffer.concat([prefix, x.bytes]));
        const session = await openSession(c1, name);
        expect((await patchChunk(c1, session, 0, prefix, prefix.length)).status).toBe(202);
        const [put, patch] = await race(
          { head: head(session, 'PUT', prefix.length, x.size, withX), body: x.bytes },
          { head: head(session, 'PATCH', prefix.length, y.size), body: y.bytes },
        );
        expect([put, patch].filter((s) => s >= 500)).toEqual([]);
        expect([put === 201, patch === 202].filter(Boolean)).toHaveLength(1);
        if (put === 201) {
          await expectBlob(c2, name, { digest: withX, bytes: Buffer.concat([prefix, x.bytes]) });
        } else {
          const bytes = await committedIs(session, prefix, [y.bytes]);
          expect((await c1.call('HEAD', `/v2/${name}/blobs/${withX}`)).status).toBe(404);
          expect((await completeSession(c1, session, sha256(bytes))).status).toBe(201);
        }
      }
      await expectBucketSound();
    });

    it(`two closing PUTs with different last chunks and digests on different replicas: at most one blob, under its own digest, ${ROUNDS} rounds`, async () => {
      const name = 'replicas/race-put-put';
      for (let round = 0; round < ROUNDS; round++) {
        const prefix = randomBlob(2 * MiB + round).bytes;
        const [x, y] = [randomBlob(3 * MiB), randomBlob(3 * MiB)];
        const digests = [sha256(Buffer.concat([prefix, x.bytes])), sha256(Buffer.concat([prefix, y.bytes]))];
        const session = await openSession(c1, name);
        expect((await patchChunk(c1, session, 0, prefix, prefix.length)).status).toBe(202);
        const answers = await race(
          { head: head(session, 'PUT', prefix.length, x.size, digests[0]), body: x.bytes },
          { head: head(session, 'PUT', prefix.length, y.size, digests[1]), body: y.bytes },
        );
        expect(answers.filter((s) => s >= 500)).toEqual([]);
        expect(answers.filter((s) => s === 201)).toHaveLength(1);
        const won = answers[0] === 201 ? 0 : 1;
        await expectBlob(c1, name, { digest: digests[won], bytes: Buffer.concat([prefix, [x, y][won].bytes]) });
        expect((await c1.call('HEAD', `/v2/${name}/blobs/${digests[1 - won]}`)).status).toBe(404);
      }
      await expectBucketSound();
    });
  });

  describe('kill -9 of the replica at every step of an upload', () => {
    const first = 6 * MiB;

    /** The session's status, or undefined when it is gone (404). */
    async function statusOf(session: Session): Promise<number | undefined> {
      const r = await c1.call('GET', session.location);
      if (r.status === 404) return undefined;
      return reportedSize(c1, session);
    }

    it.each(CRASH_POINTS.map((p) => [p]))('at %s the other replica finishes the upload, every acknowledged byte kept', async (point: CrashPoint) => {
      const victim = await stack.startExtra('blob-upload', { LADING_TEST_CRASH_AT: point });
      const victimGateway = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: victim.url });
      const cv = new RegistryTestClient(victimGateway.url);
      const exited = new Promise<string | null>((ok) => {
        if (victim.proc.exitCode !== null || victim.proc.signalCode !== null) ok(victim.proc.signalCode);
        else victim.proc.once('exit', (_code, signal) => ok(signal));
      });
      try {
        const name = `replicas/crash-${point.replace(/\./g, '-')}`;
        const blob = randomBlob(11 * MiB + 5); // three 5 MiB S3 parts: the commit composes
        const session = await openSession(c1, name);
        expect((await patchChunk(c1, session, 0, blob.bytes.subarray(0, first), first)).status).toBe(202);
        let acknowledged = first;
        const rest = blob.bytes.subarray(first);
        const onVictim = (call: Promise<TestResponse>) => call.then((r) => r.status, (e: Error) => e.message);
        const outcome = point.startsWith('upload.append')
          ? await onVictim(patchChunk(cv, session, first, rest, rest.length))
          : await (async () => {
              expect((await patchChunk(c1, session, first, rest, rest.length)).status).toBe(202);
              acknowledged = blob.size;
              return onVictim(completeSession(cv, session, blob.digest));
            })();
        expect(await exited).toBe('SIGKILL');
        expect([201, 202]).not.toContain(outcome);

        // The dead writer's lease would lapse after its 60 s by the database's clock; make it so now.
        await withDb(stack.databaseUrl, (db) => db.query('UPDATE upload_sessions SET lease_until = now() WHERE id = $1', [session.id]));

        // The client's retry, on the live replica: status, the rest if any is missing, the PUT.
        const size = await statusOf(session);
        if (size === undefined) {
          // The crash came after the upload was complete: the session is gone, the blob is there.
          expect(point).toBe('upload.commit.linked');
          expect((await c1.call('HEAD', `/v2/${name}/blobs/${blob.digest}`)).status).toBe(200);
        } else {
          expect(size).toBeGreaterThanOrEqual(acknowledged);
          if (size < blob.size) expect((await patchChunk(c1, session, size, blob.bytes.subarray(size), blob.size - size)).status).toBe(202);
          const done = await completeSession(c1, session, blob.digest);
          expect({ status: done.status, body: done.body.toString().slice(0, 300) }).toEqual({ status: 201, body: '' });
        }
        await expectBlob(c1, name, blob);
        await expectBlob(c2, name, blob);
        await expectBucketSound();
      } finally {
        await cv.close();
        await victimGateway.stop();
        await victim.stop();
      }
    });
  });
});
