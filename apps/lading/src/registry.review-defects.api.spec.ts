import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { MetadataDb } from '@lading/metadata-db';
import { BLOB_STORAGE } from '@lading/nest-common';
import type { BlobStorage } from '@lading/storage';
import { UploadPurgeService } from '@lading/app-gc-worker';
import { eventually, randomBlob, randomImage, RegistryTestClient, type TestResponse } from '@lading/testing';
import { startTestRegistry, type TestRegistry } from './embedded.harness';

jest.setTimeout(120_000);

function expectOciError(r: TestResponse, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.json().errors[0].code).toBe(code);
}

/** Each case reproduces a defect found in review of dcdd175; every one failed there. */
describe('embedded registry: defects found in review', () => {
  let reg: TestRegistry;
  let c: RegistryTestClient;
  let db: MetadataDb;

  beforeAll(async () => {
    reg = await startTestRegistry({ LADING_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'false' });
    c = new RegistryTestClient(reg.url);
    db = reg.app.get(MetadataDb);
  });
  afterAll(async () => {
    await c?.close();
    await reg?.close();
  });

  describe('NUL characters are bad input (400), never a 500', () => {
    it.each([
      ['/v2/_catalog?last=%00', 'NAME_INVALID'],
      ['/v2/_catalog?last=a%00b', 'NAME_INVALID'],
      ['/v2/nul/app/tags/list?last=%00', 'TAG_INVALID'],
    ])('GET %s → 400 %s', async (path, code) => {
      await c.pushImage('nul/app', randomImage(), 'v1');
      expectOciError(await c.call('GET', path), 400, code);
    });

    it('a NUL in the referrers artifactType filter → 400', async () => {
      const img = randomImage();
      await c.pushImage('nul/ref', img, 'v1');
      expectOciError(await c.call('GET', `/v2/nul/ref/referrers/${img.digest}?artifactType=%00`), 400, 'MANIFEST_INVALID');
      expectOciError(await c.call('GET', `/v2/nul/ref/referrers/${img.digest}?artifactType=a%2Fb%00c`), 400, 'MANIFEST_INVALID');
    });
  });

  describe('a repository exists through its manifests, not through an upload session', () => {
    it('answers tags/list with 404 NAME_UNKNOWN after an upload was opened and cancelled, and stores no repository', async () => {
      const start = await c.call('POST', '/v2/ghost/app/blobs/uploads/');
      expect(start.status).toBe(202);
      expect((await c.call('DELETE', start.headers.location)).status).toBe(204);
      expectOciError(await c.call('GET', '/v2/ghost/app/tags/list'), 404, 'NAME_UNKNOWN');
      expect(await db.read.repositories.findId('ghost/app')).toBeUndefined();
      expect((await c.call('GET', '/v2/_catalog')).json().repositories).not.toContain('ghost/app');
    });

    it('answers tags/list with 404 for a repository that has blobs but no manifest yet', async () => {
      expect((await c.pushBlob('blobsonly/app', randomBlob(100))).status).toBe(201);
      expectOciError(await c.call('GET', '/v2/blobsonly/app/tags/list'), 404, 'NAME_UNKNOWN');
    });

    it('keeps an empty tag listing once every manifest is deleted, as the reference registry and the conformance suite expect', async () => {
      const img = randomImage();
      expect((await c.pushImage('emptied/app', img, 'v1')).status).toBe(201);
      expect((await c.call('DELETE', `/v2/emptied/app/manifests/${img.digest}`)).status).toBe(202);
      const r = await c.call('GET', '/v2/emptied/app/tags/list');
      expect(r.status).toBe(200);
      expect(r.json().tags).toEqual([]);
    });
  });

  describe('stale-upload purging never cuts a streaming append', () => {
    it('keeps a session whose PATCH is still streaming, however old its last committed change', async () => {
      const start = await c.call('POST', '/v2/purge/stream/blobs/uploads/');
      const location = start.headers.location;
      const id = location.split('/').pop()!;
      const blob = randomBlob(64 * 1024);
      const url = new URL(location, reg.url);
      const req = httpRequest(url, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } });
      const answer = new Promise<number>((ok, fail) => {
        req.on('response', (res) => {
          res.resume();
          ok(res.statusCode!);
        });
        req.on('error', fail);
      });
      req.write(blob.bytes.subarray(0, 1000));
      // The append has started once its writer holds the session's lease.
      await eventually(async () => (await db.read.uploads.findSession('purge/stream', id))?.leased === true);
      await new Promise((r) => setTimeout(r, 5));
      const report = await reg.app.get(UploadPurgeService).purge(new Date(), 1);
      expect(report.sessions).toBe(0);
      expect(await db.read.uploads.exists(id)).toBe(true);
      req.end(blob.bytes.subarray(1000));
      expect(await answer).toBe(202);
      const done = await c.call('PUT', `${location}?digest=${blob.digest}`);
      expect(done.status).toBe(201);
      expect((await c.call('GET', `/v2/purge/stream/blobs/${blob.digest}`)).body.equals(blob.bytes)).toBe(true);
    });
  });

  describe('referrers are paginated and bounded', () => {
    it('lists at most n per page with a Link to the next, in digest order, across every page', async () => {
      const subject = randomImage();
      await c.pushImage('refs/app', subject, 'v1');
      const s = { digest: subject.digest, size: subject.manifest.length, mediaType: subject.mediaType };
      const referrers: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = randomImage({ subject: s, artifactType: 'application/vnd.example.sig' });
        expect((await c.pushImage('refs/app', r, r.digest)).status).toBe(201);
        referrers.push(r.digest);
      }
      const seen: string[] = [];
      let next: string | undefined = `/v2/refs/app/referrers/${subject.digest}?n=2`;
      let pages = 0;
      while (next) {
        const page = await c.call('GET', next);
        expect(page.status).toBe(200);
        expect(page.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
        const entries = page.json().manifests as { digest: string }[];
        expect(entries.length).toBeLessThanOrEqual(2);
        seen.push(...entries.map((e) => e.digest));
        next = /<([^>]+)>; rel="next"/.exec(page.headers.link ?? '')?.[1];
        pages++;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual([...referrers].sort());
      // The filter is kept across pages.
      const filtered = await c.call('GET', `/v2/refs/app/referrers/${subject.digest}?n=2&artifactType=application/vnd.example.sig`);
      expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
      expect(filtered.headers.link).toContain('artifactType=application%2Fvnd.example.sig');
    });

    it('cuts a page short once its entries pass 4 MiB of JSON, however large n is', async () => {
      const subject = randomImage();
      await c.pushImage('refs/big', subject, 'v1');
      const s = { digest: subject.digest, size: subject.manifest.length, mediaType: subject.mediaType };
      for (let i = 0; i < 6; i++) {
        const r = randomImage({ subject: s, annotations: { 'org.example.blob': String(i).repeat(800 * 1024) } });
        expect((await c.pushImage('refs/big', r, r.digest)).status).toBe(201);
      }
      const first = await c.call('GET', `/v2/refs/big/referrers/${subject.digest}?n=100`);
      expect(first.status).toBe(200);
      expect(first.body.length).toBeLessThan(4.5 * 1024 * 1024);
      expect(first.json().manifests).toHaveLength(5);
      const link = /<([^>]+)>; rel="next"/.exec(first.headers.link ?? '')?.[1];
      expect(link).toBeDefined();
      const second = await c.call('GET', link!);
      expect(second.json().manifests).toHaveLength(1);
      expect(second.headers.link).toBeUndefined();
    });
  });

  describe('finishing an interrupted commit', () => {
    /** A session of `repo` holding `bytes`, whose commit moved them into storage and then died. */
    async function interruptedCommit(repo: string, bytes: Buffer, digest: string, recorded: boolean): Promise<string> {
      const loc = (await c.call('POST', `/v2/${repo}/blobs/uploads/`)).headers.location;
      expect((await c.call('PATCH', loc, { headers: { 'content-type': 'application/octet-stream' }, body: bytes })).status).toBe(202);
      const id = loc.split('/').pop()!;
      if (recorded) {
        const owner = randomUUID();
        expect(await db.read.uploads.acquireLease(id, bytes.length, owner, 60_000)).toBe(true);
        expect(await db.read.uploads.recordCommit(id, owner, digest)).toBe(true);
        await db.read.uploads.releaseLease(id, owner);
      }
      const { parts } = (await db.read.uploads.findSession(repo, id))!;
      await reg.app.get<BlobStorage>(BLOB_STORAGE).commitUpload(id, parts, digest);
      return loc;
    }

    it('links the blob the commit verified', async () => {
      const mine = randomBlob(4000);
      const loc = await interruptedCommit('recover/mine', mine.bytes, mine.digest, true);
      expect((await c.call('PUT', `${loc}?digest=${mine.digest}`)).status).toBe(201);
      expect((await c.call('GET', `/v2/recover/mine/blobs/${mine.digest}`)).body.equals(mine.bytes)).toBe(true);
    });

    it('never links another stored blob of the same size that the caller did not upload', async () => {
      const theirs = randomBlob(4000);
      expect((await c.pushBlob('recover/theirs', theirs)).status).toBe(201);
      const mine = randomBlob(4000);
      for (const recorded of [false, true]) {
        const loc = await interruptedCommit('recover/thief', mine.bytes, mine.digest, recorded);
        expectOciError(await c.call('PUT', `${loc}?digest=${theirs.digest}`), 404, 'BLOB_UPLOAD_UNKNOWN');
        expect((await c.call('HEAD', `/v2/recover/thief/blobs/${theirs.digest}`)).status).toBe(404);
        expect(await db.read.blobs.findLinked('recover/thief', theirs.digest)).toBeUndefined();
      }
    });
  });

  describe('requests Node or Express would refuse before any route runs get the OCI body', () => {
    /** Sends `head` as raw bytes and returns everything the server wrote back. */
    function raw(head: string): Promise<string> {
      const { hostname, port } = new URL(reg.url);
      return new Promise((ok, fail) => {
        const socket = connect(Number(port), hostname, () => socket.write(head));
        let out = '';
        socket.on('data', (d) => (out += d));
        socket.on('end', () => ok(out));
        socket.on('close', () => ok(out));
        socket.on('error', fail);
      });
    }

    it.each(['abc', '-1', '99999999999999999999'])('a Content-Length of %s is 400 SIZE_INVALID with the API version header', async (cl) => {
      const answer = await raw(`PUT /v2/raw/app/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\n{}`);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/docker-distribution-api-version: registry\/2\.0/i);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).errors[0].code).toBe('SIZE_INVALID');
    });

    it('a malformed %-escape in a tag is MANIFEST_UNKNOWN, in a name NAME_INVALID', async () => {
      expectOciError(await c.call('GET', '/v2/raw/app/manifests/v1%zz'), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.call('GET', '/v2/raw%zzapp/tags/list'), 400, 'NAME_INVALID');
    });
  });
});
