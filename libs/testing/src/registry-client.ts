import { Pool, request } from 'undici';
import type { TestBlob, TestImage } from './images';

/** A response as the tests look at it. */
export interface TestResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json<T = any>(): T;
}

/** The User-Agent the test client sends unless told otherwise. */
export const TEST_USER_AGENT = 'lading-tests/1';

/**
 * A small raw-HTTP client for driving a registry in tests: every call returns status, headers and
 * body, so tests can assert the exact wire protocol.
 */
export class RegistryTestClient {
  private readonly pool: Pool;

  constructor(readonly baseUrl: string) {
    this.pool = new Pool(baseUrl, { connections: 32 });
  }

  /** Closes the client's connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  async call(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: Buffer | string | AsyncIterable<Buffer> } = {},
  ): Promise<TestResponse> {
    // Relative paths go out exactly as written (no URL normalisation), so tests can send hostile ones.
    // A User-Agent as every real client sends one (events carry it); a test may send its own.
    const opts = { method: method as never, headers: { 'user-agent': TEST_USER_AGENT, ...options.headers }, body: options.body as never };
    const res = path.startsWith('http') ? await request(path, opts) : await this.pool.request({ ...opts, path });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status: res.statusCode, headers, body, json: () => JSON.parse(body.toString('utf8')) };
  }

  /** Monolithic upload in two requests (POST, then PUT with the bytes). */
  async pushBlob(name: string, blob: TestBlob): Promise<TestResponse> {
    const start = await this.call('POST', `/v2/${name}/blobs/uploads/`);
    if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.body}`);
    const loc = start.headers.location;
    const sep = loc.includes('?') ? '&' : '?';
    return this.call('PUT', `${loc}${sep}digest=${blob.digest}`, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: blob.bytes,
    });
  }

  /** Pushes the image's blobs and its manifest under `reference`. */
  async pushImage(name: string, image: TestImage, reference = 'latest'): Promise<TestResponse> {
    for (const b of [image.config, ...image.layers]) {
      const r = await this.pushBlob(name, b);
      if (r.status !== 201) throw new Error(`blob push: ${r.status} ${r.body}`);
    }
    return this.putManifest(name, reference, image.manifest, image.mediaType);
  }

  /** PUT of manifest bytes. */
  putManifest(name: string, reference: string, bytes: Buffer, mediaType: string): Promise<TestResponse> {
    return this.call('PUT', `/v2/${name}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body: bytes });
  }
}
