import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { SizeInvalidError, UnsupportedError, v2Paths, type V2OperationName, type V2Route } from '@lading/contracts';
import { OCI_INDEX_MEDIA_TYPE } from '@lading/manifest';
import { externalUrl, reply, replyJson, type V2Exchange, type V2Handler } from '@lading/nest-common';
import { MAX_REFERRERS_PAGE, ManifestService } from '../manifests/manifest.service';
import { repositoryOf } from '../scope';
import { TagService, parseN } from '../tags/tag.service';
import { streamJsonList } from './json-list';

type ManifestsRoute = Extract<V2Route, { kind: 'manifest' | 'tags' | 'referrers' | 'catalog' }>;
type ManifestsOperation = Extract<
  V2OperationName,
  'manifest.get' | 'manifest.head' | 'manifest.put' | 'manifest.delete' | 'tags.list' | 'catalog.list' | 'referrers.list'
>;

/**
 * Translates the manifest, tag, referrers and catalog endpoints of /v2 into service calls and
 * back, dispatching on the operation the gateway resolved from the operation table; called in
 * process by the embedded gateway, or by the manifests app's controller.
 */
@Injectable()
export class ManifestsHandler implements V2Handler {
  private readonly operations: Record<ManifestsOperation, (x: V2Exchange, route: ManifestsRoute) => Promise<void>> = {
    'manifest.get': (x, r) => this.getManifest(x, referenceOf(r)),
    'manifest.head': (x, r) => this.getManifest(x, referenceOf(r)),
    'manifest.put': (x, r) => this.putManifest(x, referenceOf(r)),
    'manifest.delete': (x, r) => this.deleteManifest(x, referenceOf(r)),
    'tags.list': (x) => this.listTags(x),
    'catalog.list': (x) => this.listRepositories(x),
    'referrers.list': (x, r) => this.getReferrers(x, r.kind === 'referrers' ? r.digest : ''),
  };

  constructor(
    private readonly manifests: ManifestService,
    private readonly tags: TagService,
  ) {}

  async handle(x: V2Exchange): Promise<void> {
    const serve = this.operations[x.operation.name as ManifestsOperation];
    if (!serve) throw new UnsupportedError(`${x.req.method} is not supported here`);
    return serve(x, x.route as ManifestsRoute);
  }

  private async getManifest(x: V2Exchange, reference: string): Promise<void> {
    const m = await this.manifests.getManifest(x.scope, reference);
    reply(
      x.res,
      200,
      { 'Content-Type': m.mediaType, 'Content-Length': m.payload.length, 'Docker-Content-Digest': m.digest, ETag: `"${m.digest}"` },
      m.payload,
    );
    // A HEAD transfers no manifest: only a GET is a pull (Distribution counts both; see README).
    if (x.operation.name === 'manifest.get') {
      this.manifests.manifestPulled(x.scope, reference, m, externalUrl(x, v2Paths.manifest(repositoryOf(x.scope), m.digest)));
    }
  }

  private async putManifest(x: V2Exchange, reference: string): Promise<void> {
    const name = repositoryOf(x.scope);
    const body = await readBody(x.req, this.manifests.maxManifestSize);
    const result = await this.manifests.putManifest(x.scope, reference, body, x.req.headers['content-type'], (d) =>
      externalUrl(x, v2Paths.manifest(name, d)),
    );
    const headers: Record<string, string> = {
      Location: v2Paths.manifest(name, result.digest),
      'Docker-Content-Digest': result.digest,
    };
    if (result.subject) headers['OCI-Subject'] = result.subject;
    reply(x.res, 201, headers);
  }

  private async deleteManifest(x: V2Exchange, reference: string): Promise<void> {
    await this.manifests.deleteManifest(x.scope, reference);
    reply(x.res, 202);
  }

  private async listTags(x: V2Exchange): Promise<void> {
    const name = repositoryOf(x.scope);
    const n = x.query.get('n');
    // Without `n` the spec asks for every tag, however many: streamed, never built in memory.
    if (n === null || n === '') {
      return streamJsonList(x.res, `{"name":${JSON.stringify(name)},"tags":`, this.tags.streamTags(x.scope, x.query.get('last')));
    }
    const page = await this.tags.listTags(x.scope, n, x.query.get('last'));
    replyJson(x.res, 200, { name, tags: page.items }, linkHeader(v2Paths.tags(name), page.next));
  }

  private async listRepositories(x: V2Exchange): Promise<void> {
    const page = await this.tags.listRepositories(x.scope, x.query.get('n'), x.query.get('last'));
    replyJson(x.res, 200, { repositories: page.items }, linkHeader(v2Paths.catalog(), page.next));
  }

  private async getReferrers(x: V2Exchange, digest: string): Promise<void> {
    const artifactType = x.query.get('artifactType') ?? undefined;
    const n = x.query.get('n');
    const page = await this.manifests.listReferrers(x.scope, digest, {
      artifactType,
      n: n === null || n === '' ? null : parseN(n, MAX_REFERRERS_PAGE),
      last: x.query.get('last') ?? undefined,
    });
    const headers: Record<string, string> = { 'Content-Type': OCI_INDEX_MEDIA_TYPE };
    if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
    const extra = artifactType !== undefined ? { artifactType } : undefined;
    Object.assign(headers, linkHeader(v2Paths.referrers(repositoryOf(x.scope), digest), page.next, extra));
    reply(x.res, 200, headers, JSON.stringify(page.index));
  }
}

function referenceOf(route: ManifestsRoute): string {
  return route.kind === 'manifest' ? route.reference : '';
}

/** Reads a manifest body, refusing (413, nothing stored) anything over `limit` bytes. */
async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = (size: number) =>
    new SizeInvalidError(`manifest too large: ${size} bytes exceed the limit of ${limit}`, { size, limit }, 413);
  if (declared > limit) throw tooLarge(declared);
  // With a Content-Length, the chunks go straight into one buffer (no second copy at the end).
  const known = Number.isSafeInteger(declared) && declared >= 0;
  const into = known ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  // Stopping early must not destroy the request: the 413 still has to go out on its socket.
  for await (const c of req.iterator({ destroyOnReturn: false })) {
    const chunk = c as Buffer;
    if (size + chunk.length > limit) throw tooLarge(size + chunk.length);
    if (into) {
      if (size + chunk.length > declared) {
        throw new SizeInvalidError('the request body is longer than its Content-Length', { declared });
      }
      chunk.copy(into, size);
    } else chunks.push(chunk);
    size += chunk.length;
  }
  if (known && declared !== size) {
    throw new SizeInvalidError('the request body is shorter than its Content-Length', { declared, received: size });
  }
  return into ?? Buffer.concat(chunks, size);
}

function linkHeader(path: string, next: { last: string; n: number } | undefined, extra?: Record<string, string>): Record<string, string> {
  if (!next) return {};
  const q = new URLSearchParams({ ...extra, last: next.last, n: String(next.n) });
  return { Link: `<${path}?${q.toString()}>; rel="next"` };
}
