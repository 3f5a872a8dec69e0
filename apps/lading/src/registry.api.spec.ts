import { blobOf, indexOf, randomBlob, randomImage, RegistryTestClient, sha256 } from '@lading/testing';
import { startTestRegistry, type TestRegistry } from './embedded.harness';

jest.setTimeout(60_000);

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

function expectOciError(r: { status: number; json(): any }, status: number, code: string): void {
  expect(r.status).toBe(status);
  const body = r.json();
  expect(body.errors[0].code).toBe(code);
  expect(typeof body.errors[0].message).toBe('string');
}

describe('embedded registry: the OCI distribution API', () => {
  let reg: TestRegistry;
  let c: RegistryTestClient;

  beforeAll(async () => {
    reg = await startTestRegistry();
    c = new RegistryTestClient(reg.url);
  });
  afterAll(async () => {
    await reg?.close();
  });

  describe('base', () => {
    it('answers GET /v2/ with 200 {} and the API version header', async () => {
      const r = await c.call('GET', '/v2/');
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({});
      expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0');
    });
    it('answers unknown endpoints with an OCI 404', async () => {
      const r = await c.call('GET', '/v2/a/unknown/x');
      expect(r.status).toBe(404);
      expect(r.json().errors).toHaveLength(1);
      expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0');
    });
  });

  describe('blob uploads', () => {
    it('takes a single-request upload (POST ?digest=) with 201 and Location', async () => {
      const b = randomBlob(3000);
      const r = await c.call('POST', `/v2/mono/app/blobs/uploads/?digest=${b.digest}`, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
        body: b.bytes,
      });
      expect(r.status).toBe(201);
      expect(r.headers.location).toBe(`/v2/mono/app/blobs/${b.digest}`);
      expect(r.headers['docker-content-digest']).toBe(b.digest);
      const get = await c.call('GET', `/v2/mono/app/blobs/${b.digest}`);
      expect(get.status).toBe(200);
      expect(get.body.equals(b.bytes)).toBe(true);
    });

    it('opens a session with 202, Location, Docker-Upload-UUID and Range 0-0', async () => {
      const r = await c.call('POST', '/v2/up/a/blobs/uploads/');
      expect(r.status).toBe(202);
      expect(r.headers.location).toMatch(/^\/v2\/up\/a\/blobs\/uploads\/[0-9a-f-]{36}$/);
      expect(r.headers['docker-upload-uuid']).toBe(r.headers.location.split('/').pop());
      expect(r.headers.range).toBe('0-0');
    });

    it('takes chunks with Content-Range, reports status, refuses out-of-order chunks with 416, completes', async () => {
      const b = randomBlob(10_000);
      const loc = (await c.call('POST', '/v2/chunky/blobs/uploads/')).headers.location;
      const p1 = await c.call('PATCH', loc, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': '0-3999', 'content-length': '4000' },
        body: b.bytes.subarray(0, 4000),
      });
      expect(p1.status).toBe(202);
      expect(p1.headers.range).toBe('0-3999');
      expect(p1.headers.location).toBe(loc);
      const bad = await c.call('PATCH', loc, {
        headers: { 'content-range': '5000-5999', 'content-length': '1000' },
        body: b.bytes.subarray(5000, 6000),
      });
      expect(bad.status).toBe(416);
      const status = await c.call('GET', loc);
      expect(status.status).toBe(204);
      expect(status.headers.range).toBe('0-3999');
      const p2 = await c.call('PATCH', loc, {
        headers: { 'content-range': '4000-9999', 'content-length': '6000' },
        body: b.bytes.subarray(4000),
      });
      expect(p2.headers.range).toBe('0-9999');
      const done = await c.call('PUT', `${loc}?digest=${b.digest}`);
      expect(done.status).toBe(201);
      expect(done.headers.location).toBe(`/v2/chunky/blobs/${b.digest}`);
      expect((await c.call('GET', `/v2/chunky/blobs/${b.digest}`)).body.equals(b.bytes)).toBe(true);
    });

    it('takes a streamed PATCH without Content-Range and a final chunk in the PUT', async () => {
      const b = randomBlob(5000);
      const loc = (await c.call('POST', '/v2/streamed/blobs/uploads/')).headers.location;
      async function* gen() {
        yield b.bytes.subarray(0, 1000);
        yield b.bytes.subarray(1000, 3000);
      }
      const p = await c.call('PATCH', loc, { body: gen() });
      expect(p.status).toBe(202);
      expect(p.headers.range).toBe('0-2999');
      const done = await c.call('PUT', `${loc}?digest=${b.digest}`, {
        headers: { 'content-length': '2000' },
        body: b.bytes.subarray(3000),
      });
      expect(done.status).toBe(201);
      expect((await c.call('HEAD', `/v2/streamed/blobs/${b.digest}`)).headers['content-length']).toBe('5000');
    });

    it('refuses a digest mismatch with DIGEST_INVALID and makes nothing visible', async () => {
      const b = randomBlob(100);
      const wrong = sha256('something else');
      const loc = (await c.call('POST', '/v2/mismatch/blobs/uploads/')).headers.location;
      const r = await c.call('PUT', `${loc}?digest=${wrong}`, { headers: { 'content-length': '100' }, body: b.bytes });
      expectOciError(r, 400, 'DIGEST_INVALID');
      expect((await c.call('HEAD', `/v2/mismatch/blobs/${wrong}`)).status).toBe(404);
      expect((await c.call('HEAD', `/v2/mismatch/blobs/${b.digest}`)).status).toBe(404);
      const mono = await c.call('POST', `/v2/mismatch/blobs/uploads/?digest=${wrong}`, { headers: { 'content-length': '100' }, body: b.bytes });
      expectOciError(mono, 400, 'DIGEST_INVALID');
    });

    it.each([
      ['a malformed digest', 'sha256:xyz'],
      ['an unsupported algorithm', 'md5:d41d8cd98f00b204e9800998ecf8427e'],
      ['a digest of the wrong length', 'sha256:abcd'],
    ])('refuses %s with DIGEST_INVALID', async (_what, digest) => {
      const loc = (await c.call('POST', '/v2/baddigest/blobs/uploads/')).headers.location;
      const r = await c.call('PUT', `${loc}?digest=${digest}`, { headers: { 'content-length': '3' }, body: 'abc' });
      expectOciError(r, 400, 'DIGEST_INVALID');
    });

    it('cancels an upload with 204, after which it is BLOB_UPLOAD_UNKNOWN', async () => {
      const loc = (await c.call('POST', '/v2/cancel/blobs/uploads/')).headers.location;
      expect((await c.call('DELETE', loc)).status).toBe(204);
      expectOciError(await c.call('GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
      expectOciError(await c.call('PATCH', loc, { body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it.each(['not-a-uuid', '00000000-0000-0000-0000-000000000000'])('answers unknown upload id %s with BLOB_UPLOAD_UNKNOWN', async (id) => {
      expectOciError(await c.call('GET', `/v2/x/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      expectOciError(await c.call('PUT', `/v2/x/blobs/uploads/${id}?digest=${sha256('')}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('refuses a session of another repository', async () => {
      const loc = (await c.call('POST', '/v2/owner/blobs/uploads/')).headers.location;
      const other = loc.replace('/v2/owner/', '/v2/thief/');
      expectOciError(await c.call('GET', other), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('refuses a Content-Range that does not match Content-Length, keeping the upload as it was', async () => {
      const loc = (await c.call('POST', '/v2/crange/blobs/uploads/')).headers.location;
      // Malformed or inconsistent is bad input (400); 416 is only for a range that does not continue the upload.
      const r = await c.call('PATCH', loc, { headers: { 'content-range': '0-99', 'content-length': '10' }, body: Buffer.alloc(10) });
      expectOciError(r, 400, 'BLOB_UPLOAD_INVALID');
      expect((await c.call('GET', loc)).headers.range).toBe('0-0');
      const m = await c.call('PATCH', loc, { headers: { 'content-range': 'garbage', 'content-length': '1' }, body: 'x' });
      expectOciError(m, 400, 'BLOB_UPLOAD_INVALID');
      const backwards = await c.call('PATCH', loc, { headers: { 'content-range': '5-2', 'content-length': '4' }, body: 'abcd' });
      expectOciError(backwards, 400, 'BLOB_UPLOAD_INVALID');
      const huge = await c.call('PATCH', loc, { headers: { 'content-range': '0-99999999999999999999', 'content-length': '1' }, body: 'x' });
      expectOciError(huge, 400, 'BLOB_UPLOAD_INVALID');
      expect((await c.call('GET', loc)).headers.range).toBe('0-0');
      const gap = await c.call('PATCH', loc, { headers: { 'content-range': '3-3', 'content-length': '1' }, body: 'x' });
      expectOciError(gap, 416, 'RANGE_INVALID');
    });
  });

  describe('blobs', () => {
    const b = randomBlob(1000);
    beforeAll(async () => {
      expect((await c.pushBlob('blobs/one', b)).status).toBe(201);
    });

    it('answers HEAD with length, digest and no body', async () => {
      const r = await c.call('HEAD', `/v2/blobs/one/blobs/${b.digest}`);
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe('1000');
      expect(r.headers['docker-content-digest']).toBe(b.digest);
      expect(r.body.length).toBe(0);
    });

    it('serves ranges with 206 and Content-Range; refuses unsatisfiable ones with 416', async () => {
      const r = await c.call('GET', `/v2/blobs/one/blobs/${b.digest}`, { headers: { range: 'bytes=10-19' } });
      expect(r.status).toBe(206);
      expect(r.headers['content-range']).toBe('bytes 10-19/1000');
      expect(r.body.equals(b.bytes.subarray(10, 20))).toBe(true);
      expect((await c.call('GET', `/v2/blobs/one/blobs/${b.digest}`, { headers: { range: 'bytes=5000-' } })).status).toBe(416);
    });

    it('never reveals a blob through a repository it is not linked to', async () => {
      expectOciError(await c.call('GET', `/v2/blobs/other/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      expect((await c.call('HEAD', `/v2/blobs/other/blobs/${b.digest}`)).status).toBe(404);
    });

    it('mounts from a repository that has the blob (201) and falls back to a session when it does not (202)', async () => {
      const m = await c.call('POST', `/v2/blobs/mounted/blobs/uploads/?mount=${b.digest}&from=blobs/one`);
      expect(m.status).toBe(201);
      expect(m.headers.location).toBe(`/v2/blobs/mounted/blobs/${b.digest}`);
      expect((await c.call('HEAD', `/v2/blobs/mounted/blobs/${b.digest}`)).status).toBe(200);
      const miss = await c.call('POST', `/v2/blobs/nomount/blobs/uploads/?mount=${b.digest}&from=blobs/other`);
      expect(miss.status).toBe(202);
      expect(miss.headers.location).toMatch(/\/blobs\/uploads\//);
      const noFrom = await c.call('POST', `/v2/blobs/nomount/blobs/uploads/?mount=${b.digest}`);
      expect(noFrom.status).toBe(202);
      expect((await c.call('HEAD', `/v2/blobs/nomount/blobs/${b.digest}`)).status).toBe(404);
    });

    it('deletes a blob link with 202; afterwards it is BLOB_UNKNOWN there and still served elsewhere', async () => {
      const x = randomBlob(10);
      await c.pushBlob('blobs/del1', x);
      await c.pushBlob('blobs/del2', x);
      expect((await c.call('DELETE', `/v2/blobs/del1/blobs/${x.digest}`)).status).toBe(202);
      expectOciError(await c.call('GET', `/v2/blobs/del1/blobs/${x.digest}`), 404, 'BLOB_UNKNOWN');
      expect((await c.call('GET', `/v2/blobs/del2/blobs/${x.digest}`)).status).toBe(200);
      expectOciError(await c.call('DELETE', `/v2/blobs/del1/blobs/${x.digest}`), 404, 'BLOB_UNKNOWN');
    });
  });

  describe('manifests', () => {
    it('puts, gets and heads an image by tag and by digest, byte for byte', async () => {
      const img = randomImage();
      const put = await c.pushImage('man/app', img, 'v1');
      expect(put.status).toBe(201);
      expect(put.headers['docker-content-digest']).toBe(img.digest);
      expect(put.headers.location).toBe(`/v2/man/app/manifests/${img.digest}`);
      for (const ref of ['v1', img.digest]) {
        const get = await c.call('GET', `/v2/man/app/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
        expect(get.status).toBe(200);
        expect(get.body.equals(img.manifest)).toBe(true);
        expect(get.headers['content-type']).toBe(OCI_MANIFEST);
        expect(get.headers['docker-content-digest']).toBe(img.digest);
        const head = await c.call('HEAD', `/v2/man/app/manifests/${ref}`);
        expect(head.status).toBe(200);
        expect(head.headers['content-length']).toBe(String(img.manifest.length));
        expect(head.body.length).toBe(0);
      }
    });

    it('keeps the exact bytes of a manifest with unknown fields, nulls and no mediaType field', async () => {
      const img = randomImage({ layers: 1 });
      for (const blob of [img.config, ...img.layers]) await c.pushBlob('man/odd', blob);
      const raw = `{"schemaVersion":2,  "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${img.config.digest}","size":${img.config.size},"annotations":null},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"${img.layers[0].digest}","size":${img.layers[0].size},"data":null}],"x-unknown":{"a":1}}`;
      const put = await c.putManifest('man/odd', 'odd', Buffer.from(raw), OCI_MANIFEST);
      expect(put.status).toBe(201);
      expect(put.headers['docker-content-digest']).toBe(sha256(raw));
      expect((await c.call('GET', '/v2/man/odd/manifests/odd')).body.toString()).toBe(raw);
    });

    it('refuses a manifest whose blobs are not in the repository, storing nothing', async () => {
      const img = randomImage();
      await c.pushBlob('man/missing', img.config);
      const put = await c.putManifest('man/missing', 'v1', img.manifest, OCI_MANIFEST);
      expectOciError(put, 400, 'MANIFEST_BLOB_UNKNOWN');
      expect((await c.call('GET', '/v2/man/missing/manifests/v1')).status).toBe(404);
      expect((await c.call('GET', `/v2/man/missing/manifests/${img.digest}`)).status).toBe(404);
    });

    it('refuses an index whose children are not in the repository', async () => {
      const idx = indexOf([{ digest: sha256('nope'), size: 4, mediaType: OCI_MANIFEST }]);
      expectOciError(await c.putManifest('man/idx', 'v1', idx.manifest, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
    });

    it('takes an index over pushed children', async () => {
      const a = randomImage({ layers: 1 });
      const b = randomImage({ layers: 1 });
      await c.pushImage('man/multi', a, a.digest);
      await c.pushImage('man/multi', b, b.digest);
      const idx = indexOf([
        { digest: a.digest, size: a.manifest.length, mediaType: OCI_MANIFEST },
        { digest: b.digest, size: b.manifest.length, mediaType: OCI_MANIFEST },
      ]);
      const put = await c.putManifest('man/multi', 'latest', idx.manifest, OCI_INDEX);
      expect(put.status).toBe(201);
      const get = await c.call('GET', '/v2/man/multi/manifests/latest');
      expect(get.headers['content-type']).toBe(OCI_INDEX);
      expect(get.body.equals(idx.manifest)).toBe(true);
    });

    it.each([
      ['truncated JSON', '{"schemaVersion":2,"config":{', OCI_MANIFEST],
      ['not JSON', 'hello', OCI_MANIFEST],
      ['schema 1', '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}', 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['a wrong type', '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"x","layers":[]}', OCI_MANIFEST],
      ['a negative size', `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"${sha256('x')}","size":-1},"layers":[]}`, OCI_MANIFEST],
    ])('refuses %s with MANIFEST_INVALID', async (_what, body, type) => {
      const r = await c.putManifest('man/bad', 'v1', Buffer.from(body), type);
      expectOciError(r, 400, 'MANIFEST_INVALID');
      expect((await c.call('GET', '/v2/man/bad/manifests/v1')).status).toBe(404);
    });

    it('refuses a PUT by digest whose bytes hash to another digest', async () => {
      const img = randomImage({ layers: 0 });
      await c.pushBlob('man/dig', img.config);
      expectOciError(await c.putManifest('man/dig', sha256('other'), img.manifest, OCI_MANIFEST), 400, 'DIGEST_INVALID');
    });

    it('refuses an invalid tag with TAG_INVALID', async () => {
      const img = randomImage({ layers: 0 });
      await c.pushBlob('man/tag', img.config);
      const r = await c.putManifest('man/tag', '-bad', img.manifest, OCI_MANIFEST);
      expect(r.status).toBe(400);
      expect(['TAG_INVALID', 'MANIFEST_INVALID']).toContain(r.json().errors[0].code);
    });

    it('answers an unknown or malformed reference with 404 MANIFEST_UNKNOWN', async () => {
      expectOciError(await c.call('GET', '/v2/man/app/manifests/nope'), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.call('GET', '/v2/man/app/manifests/.INVALID_MANIFEST_NAME'), 404, 'MANIFEST_UNKNOWN');
      expect((await c.call('HEAD', '/v2/man/app/manifests/nope')).status).toBe(404);
    });

    it('deletes a tag only, then the manifest by digest with its tags', async () => {
      const img = randomImage({ layers: 1 });
      await c.pushImage('man/del', img, 'a');
      await c.putManifest('man/del', 'b', img.manifest, OCI_MANIFEST);
      expect((await c.call('DELETE', '/v2/man/del/manifests/a')).status).toBe(202);
      expect((await c.call('GET', '/v2/man/del/manifests/a')).status).toBe(404);
      expect((await c.call('GET', '/v2/man/del/manifests/b')).status).toBe(200);
      expect((await c.call('DELETE', `/v2/man/del/manifests/${img.digest}`)).status).toBe(202);
      expect((await c.call('GET', '/v2/man/del/manifests/b')).status).toBe(404);
      expect((await c.call('GET', `/v2/man/del/manifests/${img.digest}`)).status).toBe(404);
      expectOciError(await c.call('DELETE', `/v2/man/del/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    });

    it('refuses an oversized manifest with 413 and stores nothing', async () => {
      const big = Buffer.alloc(4 * 1024 * 1024 + 10, 0x20);
      const r = await c.putManifest('man/big', 'v1', big, OCI_MANIFEST);
      expect(r.status).toBe(413);
      expect(r.json().errors[0].code).toBe('SIZE_INVALID');
      expect((await c.call('GET', '/v2/man/big/manifests/v1')).status).toBe(404);
    });
  });

  describe('referrers', () => {
    it('lists manifests whose subject is the digest, with the artifactType filter', async () => {
      const subject = randomImage({ layers: 1 });
      await c.pushImage('ref/app', subject, 'v1');
      const desc = { digest: subject.digest, size: subject.manifest.length, mediaType: OCI_MANIFEST };
      const sig = randomImage({ layers: 1, subject: desc, artifactType: 'application/vnd.example.sig', annotations: { who: 'me' } });
      const sbom = randomImage({ layers: 1, subject: desc, artifactType: 'application/vnd.example.sbom' });
      const put = await c.pushImage('ref/app', sig, sig.digest);
      expect(put.headers['oci-subject']).toBe(subject.digest);
      await c.pushImage('ref/app', sbom, sbom.digest);
      const all = await c.call('GET', `/v2/ref/app/referrers/${subject.digest}`);
      expect(all.status).toBe(200);
      expect(all.headers['content-type']).toBe(OCI_INDEX);
      const idx = all.json();
      expect(idx.mediaType).toBe(OCI_INDEX);
      expect(idx.manifests).toHaveLength(2);
      const s = idx.manifests.find((m: any) => m.digest === sig.digest);
      expect(s).toEqual({ mediaType: OCI_MANIFEST, digest: sig.digest, size: sig.manifest.length, artifactType: 'application/vnd.example.sig', annotations: { who: 'me' } });
      const filtered = await c.call('GET', `/v2/ref/app/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
      expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
      expect(filtered.json().manifests.map((m: any) => m.digest)).toEqual([sbom.digest]);
    });

    it('answers an empty index for a digest without referrers', async () => {
      const r = await c.call('GET', `/v2/ref/none/referrers/${sha256('nothing')}`);
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    });

    it('accepts a manifest whose subject does not exist', async () => {
      const sig = randomImage({ layers: 0, subject: { digest: sha256('absent'), size: 5, mediaType: OCI_MANIFEST }, artifactType: 'a/b' });
      const put = await c.pushImage('ref/dangling', sig, sig.digest);
      expect(put.status).toBe(201);
      expect(put.headers['oci-subject']).toBe(sha256('absent'));
    });
  });

  describe('listing', () => {
    const tags = ['b', 'a', 'C', 'a1', '0', 'z', 'a-b', 'a_b'];
    beforeAll(async () => {
      const img = randomImage({ layers: 0 });
      await c.pushImage('list/app', img, tags[0]);
      for (const t of tags.slice(1)) await c.putManifest('list/app', t, img.manifest, OCI_MANIFEST);
    });

    it('lists tags sorted lexically', async () => {
      const r = await c.call('GET', '/v2/list/app/tags/list');
      expect(r.json()).toEqual({ name: 'list/app', tags: [...tags].sort() });
    });

    it('paginates with n, last and a Link header', async () => {
      const sorted = [...tags].sort();
      const seen: string[] = [];
      let path: string | undefined = '/v2/list/app/tags/list?n=3';
      while (path) {
        const r = await c.call('GET', path);
        const page = r.json().tags;
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page);
        const link = r.headers.link;
        path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
        if (path) expect(page).toHaveLength(3);
      }
      expect(seen).toEqual(sorted);
      const after = await c.call('GET', `/v2/list/app/tags/list?last=${sorted[2]}&n=2`);
      expect(after.json().tags).toEqual(sorted.slice(3, 5));
    });

    it('refuses a bad n and answers NAME_UNKNOWN for an unknown repository', async () => {
      expect((await c.call('GET', '/v2/list/app/tags/list?n=-1')).status).toBe(400);
      expectOciError(await c.call('GET', '/v2/list/nothing/tags/list'), 404, 'NAME_UNKNOWN');
    });

    it('lists repositories in the catalog, paginated', async () => {
      const r = await c.call('GET', '/v2/_catalog');
      const repos: string[] = r.json().repositories;
      expect(repos).toContain('list/app');
      expect([...repos].sort()).toEqual(repos);
      const p = await c.call('GET', '/v2/_catalog?n=1');
      expect(p.json().repositories).toHaveLength(1);
      expect(p.headers.link).toMatch(/^<\/v2\/_catalog\?last=.+&n=1>; rel="next"$/);
    });
  });

  describe('bad names', () => {
    it.each([
      ['upper case', '/v2/Upper/blobs/uploads/'],
      ['a doubled separator', '/v2/a..b/blobs/uploads/'],
      ['path traversal', '/v2/a/%2e%2e/b/blobs/uploads/'],
      ['a trailing separator', '/v2/a-/blobs/uploads/'],
      ['an overlong name', `/v2/${'a'.repeat(256)}/blobs/uploads/`],
    ])('refuses %s with NAME_INVALID and creates nothing', async (_what, path) => {
      const r = await c.call('POST', path);
      expectOciError(r, 400, 'NAME_INVALID');
    });
  });

  describe('concurrency', () => {
    it('takes 16 concurrent uploads of one blob into 16 repositories', async () => {
      const b = randomBlob(256 * 1024);
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => c.pushBlob(`conc/r${i}`, b)));
      expect(results.map((r) => r.status)).toEqual(Array(16).fill(201));
      for (let i = 0; i < 16; i++) expect((await c.call('HEAD', `/v2/conc/r${i}/blobs/${b.digest}`)).status).toBe(200);
    });

    it('takes 16 concurrent pushes of different images into one repository', async () => {
      const images = Array.from({ length: 16 }, () => randomImage({ layers: 2, layerSize: 4096 }));
      const results = await Promise.all(images.map((img, i) => c.pushImage('conc/one', img, `t${i}`)));
      expect(results.map((r) => r.status)).toEqual(Array(16).fill(201));
      const tagsList = (await c.call('GET', '/v2/conc/one/tags/list')).json().tags;
      expect(tagsList).toHaveLength(16);
    });
  });
});

describe('embedded registry: configuration and restarts', () => {
  it('answers DELETE with 405 UNSUPPORTED when deletes are disabled', async () => {
    const reg = await startTestRegistry({ LADING_STORAGE_DELETE_ENABLED: 'false' });
    try {
      const c = new RegistryTestClient(reg.url);
      const img = randomImage({ layers: 1 });
      await c.pushImage('nodel/app', img, 'v1');
      expectOciError(await c.call('DELETE', '/v2/nodel/app/manifests/v1'), 405, 'UNSUPPORTED');
      expectOciError(await c.call('DELETE', `/v2/nodel/app/blobs/${img.config.digest}`), 405, 'UNSUPPORTED');
      expect((await c.call('GET', '/v2/nodel/app/manifests/v1')).status).toBe(200);
    } finally {
      await reg.close();
    }
  });

  it('keeps everything across a restart, including an upload in progress', async () => {
    let reg = await startTestRegistry();
    const dir = reg.dataDir;
    let c = new RegistryTestClient(reg.url);
    const img = randomImage();
    await c.pushImage('keep/app', img, 'v1');
    const b = randomBlob(2000);
    const loc = (await c.call('POST', '/v2/keep/app/blobs/uploads/')).headers.location;
    await c.call('PATCH', loc, { headers: { 'content-range': '0-999', 'content-length': '1000' }, body: b.bytes.subarray(0, 1000) });
    await reg.close(true);

    reg = await startTestRegistry({}, dir);
    c = new RegistryTestClient(reg.url);
    try {
      expect((await c.call('GET', '/v2/keep/app/manifests/v1')).body.equals(img.manifest)).toBe(true);
      expect((await c.call('GET', loc)).headers.range).toBe('0-999');
      await c.call('PATCH', loc, { headers: { 'content-range': '1000-1999', 'content-length': '1000' }, body: b.bytes.subarray(1000) });
      expect((await c.call('PUT', `${loc}?digest=${b.digest}`)).status).toBe(201);
      expect((await c.call('GET', `/v2/keep/app/blobs/${b.digest}`)).body.equals(b.bytes)).toBe(true);
    } finally {
      await reg.close();
    }
  });

  it('refuses a manifest over a configured size limit', async () => {
    const reg = await startTestRegistry({ LADING_VALIDATION_MANIFESTS_MAXSIZE: '2048' });
    try {
      const c = new RegistryTestClient(reg.url);
      const img = randomImage({ layers: 40 });
      expect(img.manifest.length).toBeGreaterThan(2048);
      const r = await c.putManifest('limit/app', 'v1', img.manifest, OCI_MANIFEST);
      expect(r.status).toBe(413);
    } finally {
      await reg.close();
    }
  });

  it('stores the blob in one copy when several repositories upload it', async () => {
    const reg = await startTestRegistry();
    try {
      const c = new RegistryTestClient(reg.url);
      const b = blobOf('shared bytes');
      await Promise.all([c.pushBlob('copy/a', b), c.pushBlob('copy/b', b)]);
      const { readdirSync } = await import('node:fs');
      const { join } = await import('node:path');
      const hex = b.digest.slice(7);
      const dir = join(reg.dataDir, 'storage', 'blobs', 'sha256', hex.slice(0, 2));
      expect(readdirSync(dir)).toEqual([hex]);
    } finally {
      await reg.close();
    }
  });
});
