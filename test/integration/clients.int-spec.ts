import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryTestClient } from '@lading/testing';
import {
  STACKS,
  clientSandbox,
  toolPath,
  uniqueRepo,
  type ClientSandbox,
  type ClientStack,
} from '../support/clients-tools';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  layoutEntry,
  randomMultiPlatformImage,
  readOciLayout,
  sha256Digest,
  tarWithFile,
  writeOciLayout,
  type MultiPlatformImage,
} from '../support/oci-layout';
import { describeSpread, idleReplicas } from '../support/replicated-stack';

/** Asserts that the layout in `dir` holds `image` under `tag`, every blob byte for byte. */
function expectLayoutHolds(dir: string, tag: string, image: MultiPlatformImage): void {
  const layout = readOciLayout(dir);
  const entry = layoutEntry(layout, tag);
  expect({ digest: entry.digest, mediaType: entry.mediaType, size: entry.size }).toEqual({
    digest: image.index.digest,
    mediaType: OCI_INDEX,
    size: image.index.size,
  });
  const missing = [...image.blobs.keys()].filter((d) => !layout.blobs.has(d));
  expect(missing).toEqual([]);
  for (const [digest, blob] of image.blobs) expect(layout.blobs.get(digest)!.equals(blob.bytes)).toBe(true);
}

describe.each(STACKS)('real clients against the %s registry', (mode, startStack) => {
  let stack: ClientStack;
  let sandbox: ClientSandbox;
  let http: RegistryTestClient;

  beforeAll(async () => {
    sandbox = clientSandbox(`lading-clients-${mode}-`);
    stack = await startStack();
    http = new RegistryTestClient(stack.url);
  });
  afterAll(async () => {
    await http?.close();
    await stack?.stop();
    sandbox?.remove();
  });

  /** Adds the registry's output to a failure, since most failures here are the registry's. */
  async function withLog<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      if (e instanceof Error) e.message += `\n--- registry log (${mode})\n${stack.log().slice(-20_000)}`;
      throw e;
    }
  }

  describe('skopeo', () => {
    const skopeo = () => toolPath('SKOPEO');

    it('copies a multi-platform OCI layout in and back out with every digest unchanged', async () => {
      const image = randomMultiPlatformImage();
      const src = join(sandbox.dir, 'skopeo-src');
      const dst = join(sandbox.dir, 'skopeo-dst');
      writeOciLayout(src, image.blobs.values(), image.index, 'v1');
      const remote = `docker://${stack.host}/${uniqueRepo('skopeo')}:v1`;

      await withLog(() =>
        sandbox.run(skopeo(), [
          'copy',
          '--all',
          '--preserve-digests',
          '--dest-tls-verify=false',
          `oci:${src}:v1`,
          remote,
        ]),
      );
      const raw = await withLog(() => sandbox.run(skopeo(), ['inspect', '--raw', '--tls-verify=false', remote]));
      expect(raw.stdout).toBe(image.index.bytes.toString('utf8'));
      await withLog(() =>
        sandbox.run(skopeo(), [
          'copy',
          '--all',
          '--preserve-digests',
          '--src-tls-verify=false',
          remote,
          `oci:${dst}:v1`,
        ]),
      );

      expectLayoutHolds(dst, 'v1', image);
    });

    it('copies between two repositories of the registry (blobs it has seen are mounted) keeping the index digest', async () => {
      const image = randomMultiPlatformImage({ layersPerImage: 1 });
      const src = join(sandbox.dir, 'skopeo-mount-src');
      writeOciLayout(src, image.blobs.values(), image.index, 'v1');
      const [from, to] = [uniqueRepo('skopeo-from'), uniqueRepo('skopeo-to')];
      await withLog(() =>
        sandbox.run(skopeo(), [
          'copy',
          '--all',
          '--preserve-digests',
          '--dest-tls-verify=false',
          `oci:${src}:v1`,
          `docker://${stack.host}/${from}:v1`,
        ]),
      );
      const copy = await withLog(() =>
        sandbox.run(skopeo(), [
          '--debug',
          'copy',
          '--all',
          '--preserve-digests',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `docker://${stack.host}/${from}:v1`,
          `docker://${stack.host}/${to}:v1`,
        ]),
      );

      // skopeo remembers where it pushed each layer and mounts it from there (POST ?mount=&from=);
      // configs it uploads again.
      const layerCount = image.images.reduce((n, i) => n + i.layers.length, 0);
      expect(copy.stderr.match(/mount OK/g) ?? []).toHaveLength(layerCount);

      const head = await http.call('HEAD', `/v2/${to}/manifests/v1`, { headers: { accept: OCI_INDEX } });
      expect(head.headers['docker-content-digest']).toBe(image.index.digest);
      for (const [digest, blob] of image.blobs) {
        const kind = blob.mediaType === OCI_INDEX || blob.mediaType === OCI_MANIFEST ? 'manifests' : 'blobs';
        let r = await http.call('GET', `/v2/${to}/${kind}/${digest}`, { headers: { accept: blob.mediaType } });
        // On S3 a blob GET answers 307 to a presigned URL, as clients expect: follow it as they do.
        if (r.status === 307 && kind === 'blobs') r = await http.call('GET', r.headers.location);
        expect({ digest, status: r.status, same: r.body.equals(blob.bytes) }).toEqual({
          digest,
          status: 200,
          same: true,
        });
      }
    });

    it('inspects one platform of the index, lists tags and deletes the index', async () => {
      const image = randomMultiPlatformImage({ layersPerImage: 1 });
      const src = join(sandbox.dir, 'skopeo-inspect-src');
      writeOciLayout(src, image.blobs.values(), image.index, 'multi');
      const repo = uniqueRepo('skopeo');
      const remote = `docker://${stack.host}/${repo}:multi`;
      await withLog(() =>
        sandbox.run(skopeo(), [
          'copy',
          '--all',
          '--preserve-digests',
          '--dest-tls-verify=false',
          `oci:${src}:multi`,
          remote,
        ]),
      );

      const arm = image.images.find((i) => i.platform.architecture === 'arm64')!;
      const out = await withLog(() =>
        sandbox.run(skopeo(), [
          '--override-arch',
          'arm64',
          '--override-variant',
          'v8',
          'inspect',
          '--tls-verify=false',
          remote,
        ]),
      );
      const info = JSON.parse(out.stdout);
      // skopeo 1.9 reports the digest of what the tag names (the index); the rest is arm64's.
      expect(info.Digest).toBe(image.index.digest);
      expect(info.Architecture).toBe('arm64');
      expect(info.Layers).toEqual(arm.layers.map((l) => l.digest));
      expect(info.Labels).toEqual(JSON.parse(arm.config.bytes.toString('utf8')).config.Labels);

      const tags = await withLog(() =>
        sandbox.run(skopeo(), ['list-tags', '--tls-verify=false', `docker://${stack.host}/${repo}`]),
      );
      expect(JSON.parse(tags.stdout)).toEqual({ Repository: `${stack.host}/${repo}`, Tags: ['multi'] });

      // skopeo resolves the tag to the index digest and deletes by digest, which removes the tag too.
      await withLog(() => sandbox.run(skopeo(), ['delete', '--tls-verify=false', remote]));
      expect(
        (await http.call('GET', `/v2/${repo}/manifests/${image.index.digest}`, { headers: { accept: OCI_INDEX } }))
          .status,
      ).toBe(404);
      const tagList = await http.call('GET', `/v2/${repo}/tags/list`);
      expect({ status: tagList.status, body: tagList.json() }).toEqual({ status: 200, body: { name: repo, tags: [] } });
      const after = await sandbox.run(skopeo(), ['inspect', '--raw', '--tls-verify=false', remote], { check: false });
      expect(after.code).not.toBe(0);
      expect(after.stderr).toMatch(/manifest unknown/i);
    });
  });

  describe('crane', () => {
    const crane = (args: string[], check = true) =>
      withLog(() => sandbox.run(toolPath('CRANE'), ['--insecure', ...args], { check }));

    it('pushes a layout, pulls it back, lists, resolves, deletes', async () => {
      const image = randomMultiPlatformImage({
        platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
      });
      const src = join(sandbox.dir, 'crane-src');
      const dst = join(sandbox.dir, 'crane-dst');
      writeOciLayout(src, image.blobs.values(), image.index, 'v1');
      const repo = uniqueRepo('crane');
      const ref = `${stack.host}/${repo}`;

      // One entry in index.json that is an index: crane pushes that index as it is.
      const pushed = await crane(['push', src, `${ref}:v1`]);
      expect(pushed.stdout.trim()).toBe(`${ref}@${image.index.digest}`);
      expect((await crane(['digest', `${ref}:v1`])).stdout.trim()).toBe(image.index.digest);
      const amd = image.images[0];
      expect((await crane(['digest', '--platform', 'linux/amd64', `${ref}:v1`])).stdout.trim()).toBe(
        amd.manifest.digest,
      );
      expect((await crane(['manifest', `${ref}@${amd.manifest.digest}`])).stdout).toBe(
        amd.manifest.bytes.toString('utf8'),
      );
      expect((await crane(['config', `${ref}@${amd.manifest.digest}`])).stdout).toBe(amd.config.bytes.toString('utf8'));

      await crane(['tag', `${ref}:v1`, 'v2']);
      expect((await crane(['ls', ref])).stdout.trim().split('\n')).toEqual(['v1', 'v2']);
      expect((await crane(['catalog', stack.host])).stdout.trim().split('\n')).toContain(repo);

      await crane(['pull', '--format=oci', `${ref}:v1`, dst]);
      const layout = readOciLayout(dst);
      expect(layout.index.manifests.map((m) => m.digest)).toContain(image.index.digest);
      expect([...image.blobs.keys()].filter((d) => !layout.blobs.has(d))).toEqual([]);

      await crane(['delete', `${ref}@${image.index.digest}`]);
      const gone = await crane(['digest', `${ref}:v1`], false);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/MANIFEST_UNKNOWN|404/);
      expect(
        (await http.call('GET', `/v2/${repo}/manifests/${image.index.digest}`, { headers: { accept: OCI_INDEX } }))
          .status,
      ).toBe(404);
      expect((await http.call('GET', `/v2/${repo}/manifests/v2`, { headers: { accept: OCI_INDEX } })).status).toBe(404);
      // The children were pushed by digest and stay.
      expect((await crane(['digest', `${ref}@${amd.manifest.digest}`])).stdout.trim()).toBe(amd.manifest.digest);
    });

    it('appends a layer to scratch and copies the image to another repository', async () => {
      const repo = uniqueRepo('crane-append');
      const ref = `${stack.host}/${repo}`;
      const tarPath = join(sandbox.dir, 'append-layer.tar');
      writeFileSync(tarPath, tarWithFile('hello.txt', randomBytes(3000)));

      const appended = await crane(['append', '--oci-empty-base', '-f', tarPath, '-t', `${ref}:app`]);
      const digest = appended.stdout.trim().split('@')[1];
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const manifest = await crane(['manifest', `${ref}:app`]);
      expect(sha256Digest(Buffer.from(manifest.stdout))).toBe(digest);
      expect(JSON.parse(manifest.stdout).mediaType).toBe(OCI_MANIFEST);

      const copy = uniqueRepo('crane-copy');
      await crane(['copy', `${ref}:app`, `${stack.host}/${copy}:app`]);
      expect((await crane(['digest', `${stack.host}/${copy}:app`])).stdout.trim()).toBe(digest);
    });
  });

  describe('oras', () => {
    const oras = (args: string[], cwd?: string) =>
      withLog(() => sandbox.run(toolPath('ORAS'), [...args, '--plain-http'], { cwd }));

    it('pushes an artifact, attaches a referrer, discovers it and pulls the file back', async () => {
      const work = join(sandbox.dir, 'oras');
      mkdirSync(work, { recursive: true });
      const content = Buffer.from(`hello from ${mode} ${randomBytes(16).toString('hex')}\n`);
      writeFileSync(join(work, 'hello.txt'), content);
      writeFileSync(join(work, 'sig.json'), JSON.stringify({ signed: sha256Digest(content) }));
      const repo = uniqueRepo('oras');
      const ref = `${stack.host}/${repo}`;

      const push = JSON.parse(
        (
          await oras(
            [
              'push',
              '--format',
              'json',
              '--artifact-type',
              'application/vnd.example.file',
              `${ref}:v1`,
              'hello.txt:text/plain',
            ],
            work,
          )
        ).stdout,
      );
      expect(push.digest).toMatch(/^sha256:/);
      const manifest = await http.call('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
      expect(manifest.status).toBe(200);
      expect(manifest.headers['docker-content-digest']).toBe(push.digest);
      const body = manifest.json();
      expect(body.artifactType).toBe('application/vnd.example.file');
      expect(body.layers).toEqual([
        expect.objectContaining({ mediaType: 'text/plain', digest: sha256Digest(content), size: content.length }),
      ]);

      const attach = JSON.parse(
        (
          await oras(
            [
              'attach',
              '--format',
              'json',
              '--distribution-spec',
              'v1.1-referrers-api',
              '--artifact-type',
              'application/vnd.example.sig',
              `${ref}@${push.digest}`,
              'sig.json:application/json',
            ],
            work,
          )
        ).stdout,
      );
      expect(attach.digest).toMatch(/^sha256:/);

      const discovered = JSON.parse(
        (
          await oras([
            'discover',
            '--format',
            'json',
            '--distribution-spec',
            'v1.1-referrers-api',
            `${ref}@${push.digest}`,
          ])
        ).stdout,
      );
      // oras 1.3 prints the subject with its referrers as a tree.
      expect(discovered.digest).toBe(push.digest);
      expect(
        discovered.referrers.map((r: { digest: string; artifactType: string; referrers: unknown[] }) => ({
          digest: r.digest,
          artifactType: r.artifactType,
          referrers: r.referrers,
        })),
      ).toEqual([{ digest: attach.digest, artifactType: 'application/vnd.example.sig', referrers: [] }]);
      const referrer = await http.call('GET', `/v2/${repo}/manifests/${attach.digest}`, {
        headers: { accept: OCI_MANIFEST },
      });
      expect(referrer.json().subject).toEqual({
        mediaType: OCI_MANIFEST,
        digest: push.digest,
        size: manifest.body.length,
      });

      const none = JSON.parse(
        (
          await oras([
            'discover',
            '--format',
            'json',
            '--artifact-type',
            'application/vnd.example.other',
            `${ref}@${push.digest}`,
          ])
        ).stdout,
      );
      expect(none.referrers).toEqual([]);

      const filtered = await http.call(
        'GET',
        `/v2/${repo}/referrers/${push.digest}?artifactType=application/vnd.example.sig`,
      );
      expect(filtered.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([attach.digest]);

      // The referrers API served the subject, so oras kept no referrers-tag fallback.
      expect((await http.call('GET', `/v2/${repo}/tags/list`)).json().tags).toEqual(['v1']);

      const out = join(sandbox.dir, 'oras-out');
      await oras(['pull', '-o', out, `${ref}:v1`]);
      expect(readFileSync(join(out, 'hello.txt')).equals(content)).toBe(true);
    });
  });

  if (mode.includes('replicas')) {
    // Each client run is a process of its own with connections of its own, spread over the gateways.
    it('spread the requests of the clients over both replicas of gateway, blob-upload and manifests', () => {
      const spread = stack.spread!();
      console.log(`clients (${mode}) requests per replica: ${describeSpread(spread)}`);
      expect(idleReplicas(spread, ['gateway', 'blob-upload', 'manifests'])).toEqual([]);
    });
  }
});
