/**
 * The few OCI Distribution calls the workloads make, over an undici dispatcher bound to one
 * registry. Every call checks the status the spec promises and fails loudly otherwise: a
 * benchmark that counts error responses as throughput measures nothing.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** The OCI image manifest media type used for the manifest workload. */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A response that is not what the spec promises. */
export class UnexpectedResponseError extends Error {}

async function expectStatus(what: string, res: Dispatcher.ResponseData, status: number): Promise<void> {
  if (res.statusCode === status) return;
  const body = await res.body.text().catch(() => '');
  throw new UnexpectedResponseError(`${what}: expected ${status}, got ${res.statusCode}: ${body.slice(0, 500)}`);
}

/** `POST /v2/<repo>/blobs/uploads/`: opens an upload session; returns its path and query. */
export async function startUpload(client: Dispatcher, repo: string): Promise<string> {
  const res = await client.request({
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/`,
    headers: { 'content-length': '0' },
  });
  await expectStatus(`POST /v2/${repo}/blobs/uploads/`, res, 202);
  await res.body.dump();
  const location = res.headers['location'];
  if (typeof location !== 'string') throw new UnexpectedResponseError('upload started without a Location header');
  const url = new URL(location, 'http://registry.invalid');
  return `${url.pathname}${url.search}`;
}

/** A blob to push: digest and size known up front, the body a buffer or a stream of chunks. */
export interface BlobBody {
  digest: string;
  size: number;
  body: Buffer | AsyncIterable<Buffer>;
}

/** `PUT <location>?digest=`: the whole blob as the body; checks the stored digest. */
export async function putBlob(client: Dispatcher, location: string, blob: BlobBody): Promise<void> {
  const url = new URL(location, 'http://registry.invalid');
  url.searchParams.set('digest', blob.digest);
  const res = await client.request({
    method: 'PUT',
    path: `${url.pathname}${url.search}`,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: Buffer.isBuffer(blob.body) ? blob.body : Readable.from(blob.body, { objectMode: false }),
  });
  await expectStatus(`PUT ${url.pathname}`, res, 201);
  await res.body.dump();
  const digest = res.headers['docker-content-digest'];
  if (digest !== undefined && digest !== blob.digest) {
    throw new UnexpectedResponseError(`PUT blob: stored as ${String(digest)}, pushed ${blob.digest}`);
  }
}

/** A monolithic push in two requests: `POST` then `PUT` with the whole body. */
export async function pushBlob(client: Dispatcher, repo: string, blob: BlobBody): Promise<void> {
  await putBlob(client, await startUpload(client, repo), blob);
}

/** What a blob GET received: the bytes' count and sha256 digest, and whether it went through a redirect. */
export interface PulledBlob {
  bytes: number;
  digest: string;
  redirected: boolean;
}

/**
 * `GET /v2/<repo>/blobs/<digest>`, body streamed, hashed (sha256) and discarded. A 307 (the
 * registry's redirect to a presigned storage URL) is followed once, through `storage`: the
 * dispatcher for other origins, so the registry's client stays bound to the registry.
 */
export async function pullBlob(
  client: Dispatcher,
  storage: Dispatcher,
  repo: string,
  digest: string,
): Promise<PulledBlob> {
  const what = `GET blob ${digest}`;
  let res = await client.request({ method: 'GET', path: `/v2/${repo}/blobs/${digest}` });
  let redirected = false;
  if (res.statusCode === 307) {
    await res.body.dump();
    const location = res.headers['location'];
    if (typeof location !== 'string') throw new UnexpectedResponseError(`${what}: 307 without a Location header`);
    const url = new URL(location);
    res = await storage.request({ origin: url.origin, method: 'GET', path: `${url.pathname}${url.search}` });
    redirected = true;
  }
  await expectStatus(redirected ? `${what} (redirected)` : what, res, 200);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { bytes, digest: `sha256:${hash.digest('hex')}`, redirected };
}

/** `PUT /v2/<repo>/manifests/<tag>` with an OCI image manifest. */
export async function putManifest(client: Dispatcher, repo: string, tag: string, manifest: Buffer): Promise<void> {
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${tag}`,
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  await expectStatus(`PUT manifest ${repo}:${tag}`, res, 201);
  await res.body.dump();
}
