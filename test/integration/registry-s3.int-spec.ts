import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { S3BlobStorage } from '@lading/storage';
import { RegistryTestClient, randomBlob } from '@lading/testing';
import { clientSandbox, toolPath, uniqueRepo, type ClientSandbox } from '../support/clients-tools';
import { layoutEntry, randomMultiPlatformImage, readOciLayout, writeOciLayout } from '../support/oci-layout';
import { startEmbedded, startSplit, type LadingProcess, type SplitStack } from '../support/registry-processes';
import { purgeS3Root, s3RegistryEnv, testS3Options } from '../support/s3';

const MiB = 1024 * 1024;

/**
 * The embedded registry configured with the s3 driver against the real MinIO (its own
 * `rootdirectory` per run): real clients push and pull through it with blob GET redirects on
 * (307 to a presigned MinIO URL, the default) and off (streamed), every digest kept; ranged
 * reads both ways; chunked uploads whose small chunks are staged into 5 MiB parts; and nothing
 * of an upload left in the bucket afterwards.
 */
describe.each([
  ['redirects on (the default)', false],
  ['redirects off', true],
])('the registry on S3 (MinIO), %s', (_name, disableRedirect) => {
  const rootDirectory = `registry-e2e/${randomUUID()}`;
  const options = testS3Options(rootDirectory);
  const storage = new S3BlobStorage(options);
  let registry: LadingProcess & { dataDir: string };
  let http: RegistryTestClient;
  let sandbox: ClientSandbox;

  beforeAll(async () => {
    registry = await startEmbedded({
      ...s3RegistryEnv(rootDirectory),
      ...(disableRedirect ? { LADING_STORAGE_REDIRECT_DISABLE: 'true' } : {}),
    });
    http = new RegistryTestClient(registry.url);
    sandbox = clientSandbox('lading-s3-e2e-');
  }, 120_000);

  afterAll(async () => {
    await http?.close();
    await registry?.stop();
    sandbox?.remove();
    await purgeS3Root(rootDirectory);
  });

  async function withLog<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      if (e instanceof Error) e.message += `\n--- registry log\n${registry.log().slice(-20_000)}`;
      throw e;
    }
  }

  it('answers a blob GET with 307 to a presigned URL, or streams it, whole and by range; HEAD from the registry', async () => {
    const name = uniqueRepo('s3-get');
    const blob = randomBlob(64 * 1024);
    expect((await http.pushBlob(name, blob)).status).toBe(201);
    const path = `/v2/${name}/blobs/${blob.digest}`;

    const head = await http.call('HEAD', path);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.size));

    const get = await http.call('GET', path);
    const ranged = await http.call('GET', path, { headers: { range: 'bytes=100-199' } });
    if (disableRedirect) {
      expect(get.status).toBe(200);
      expect(get.body.equals(blob.bytes)).toBe(true);
      expect(ranged.status).toBe(206);
      expect(ranged.body.equals(blob.bytes.subarray(100, 200))).toBe(true);
    } else {
      expect(get.status).toBe(307);
      expect(get.headers['docker-content-digest']).toBe(blob.digest);
      const location = get.headers.location;
      expect(location.startsWith(options.regionEndpoint!)).toBe(true);
      expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('1200');
      const followed = await http.call('GET', location);
      expect(followed.status).toBe(200);
      expect(followed.body.equals(blob.bytes)).toBe(true);
      expect(ranged.status).toBe(307);
      const followedRange = await http.call('GET', ranged.headers.location, { headers: { range: 'bytes=100-199' } });
      expect(followedRange.status).toBe(206);
      expect(followedRange.body.equals(blob.bytes.subarray(100, 200))).toBe(true);
    }
    // Not linked here: BLOB_UNKNOWN either way, never a redirect.
    expect((await http.call('GET', `/v2/${uniqueRepo('s3-other')}/blobs/${blob.digest}`)).status).toBe(404);
  });

  it('commits a chunked upload of small PATCHes staged into 5 MiB parts, byte for byte, leaving no upload behind', async () => {
    const name = uniqueRepo('s3-chunked');
    const blob = randomBlob(11 * MiB + 123);
    const start = await http.call('POST', `/v2/${name}/blobs/uploads/`);
    expect(start.status).toBe(202);
    let location = start.headers.location;
    const chunk = 1536 * 1024;
    for (let offset = 0; offset < blob.size; offset += chunk) {
      const bytes = blob.bytes.subarray(offset, offset + chunk);
      const patch = await http.call('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + bytes.length - 1}`,
          'content-length': String(bytes.length),
        },
        body: bytes,
      });
      expect(patch.status).toBe(202);
      expect(patch.headers.range).toBe(`0-${offset + bytes.length - 1}`);
      location = patch.headers.location;
    }
    const put = await http.call('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${blob.digest}`);
    expect(put.status).toBe(201);
    expect(await storage.statBlob(blob.digest)).toEqual({ size: blob.size });
    const stored = createHash('sha256');
    for await (const c of await storage.readBlob(blob.digest)) stored.update(c as Buffer);
    expect(`sha256:${stored.digest('hex')}`).toBe(blob.digest);
    expect((await storage.keys()).filter((k) => k.includes('uploads/') || k.startsWith('multipart:'))).toEqual([]);
  }, 120_000);

  it('keeps every digest through skopeo and crane, which follow the redirect', async () => {
    const image = randomMultiPlatformImage();
    const src = join(sandbox.dir, `src-${disableRedirect}`);
    writeOciLayout(src, image.blobs.values(), image.index, 'v1');
    const ref = `${new URL(registry.url).host}/${uniqueRepo('s3-clients')}`;
    await withLog(() =>
      sandbox.run(toolPath('SKOPEO'), ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${ref}:v1`]),
    );
    const viaSkopeo = join(sandbox.dir, `skopeo-dst-${disableRedirect}`);
    await withLog(() =>
      sandbox.run(toolPath('SKOPEO'), ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}:v1`, `oci:${viaSkopeo}:v1`]),
    );
    const viaCrane = join(sandbox.dir, `crane-dst-${disableRedirect}`);
    await withLog(() => sandbox.run(toolPath('CRANE'), ['--insecure', 'pull', '--format=oci', `${ref}:v1`, viaCrane]));
    for (const dir of [viaSkopeo, viaCrane]) {
      const layout = readOciLayout(dir);
      expect(layout.index.manifests.map((m) => m.digest)).toContain(image.index.digest);
      for (const [digest, blob] of image.blobs) expect(layout.blobs.get(digest)?.equals(blob.bytes)).toBe(true);
    }
    expect(layoutEntry(readOciLayout(viaSkopeo), 'v1').digest).toBe(image.index.digest);
  }, 300_000);
});

/**
 * Split mode on PostgreSQL and MinIO with two blob-upload processes behind two gateways: an
 * upload's chunks alternate between them, so each chunk lands on a process that holds no state
 * of the session (the part list is in the database, the parts in the bucket) and re-hashes the
 * stored parts; the blob GET's 307 passes through the gateway.
 */
describe('the split registry on S3 (MinIO) with two blob-upload processes', () => {
  const rootDirectory = `registry-split/${randomUUID()}`;
  const storage = new S3BlobStorage(testS3Options(rootDirectory));
  let stack: SplitStack;
  let c1: RegistryTestClient;
  let c2: RegistryTestClient;

  beforeAll(async () => {
    stack = await startSplit({ env: s3RegistryEnv(rootDirectory), withWorkers: false });
    const bu2 = await stack.startExtra('blob-upload');
    // Extras stop with the stack.
    const gw2 = await stack.startExtra('gateway', { LADING_SERVICES_BLOBUPLOAD_URL: bu2.url });
    c1 = new RegistryTestClient(stack.url);
    c2 = new RegistryTestClient(gw2.url);
  }, 180_000);

  afterAll(async () => {
    await c1?.close();
    await c2?.close();
    await stack?.stop();
    await purgeS3Root(rootDirectory);
  });

  it('alternates PATCHes of any size between the processes and commits the right bytes on the other one', async () => {
    const name = uniqueRepo('s3-split');
    const blob = randomBlob(13 * MiB + 4321);
    const cuts = [0, 4096, 3 * MiB, 6 * MiB + 1, 6 * MiB + 2, 12 * MiB, blob.size];
    const clients = [c1, c2];
    let location = (await c1.call('POST', `/v2/${name}/blobs/uploads/`)).headers.location;
    for (let i = 0; i + 1 < cuts.length; i++) {
      const bytes = blob.bytes.subarray(cuts[i], cuts[i + 1]);
      const patch = await clients[i % 2].call('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${cuts[i]}-${cuts[i + 1] - 1}`,
          'content-length': String(bytes.length),
        },
        body: bytes,
      });
      expect({ i, status: patch.status, range: patch.headers.range }).toEqual({ i, status: 202, range: `0-${cuts[i + 1] - 1}` });
      location = patch.headers.location;
    }
    const put = await clients[cuts.length % 2].call('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${blob.digest}`);
    expect(put.status).toBe(201);
    const get = await c1.call('GET', `/v2/${name}/blobs/${blob.digest}`);
    expect(get.status).toBe(307);
    const followed = await c1.call('GET', get.headers.location);
    expect(followed.body.equals(blob.bytes)).toBe(true);
    expect((await storage.keys()).filter((k) => k.includes('uploads/') || k.startsWith('multipart:'))).toEqual([]);
  }, 180_000);
});
