import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { SizeInvalidError, UnsupportedError, v2Paths, type V2Route } from '@lading/contracts';
import { OCI_INDEX_MEDIA_TYPE } from '@lading/manifest';
import { externalUrl, reply, replyJson, type V2Exchange, type V2Handler } from '@lading/nest-common';
import { assertRepositoryName } from '@lading/reference';
import { ManifestService } from '../manifests/manifest.service';
import { TagService, type Page } from '../tags/tag.service';

type ManifestsRoute = Extract<V2Route, { kind: 'manifest' | 'tags' | 'referrers' | 'catalog' }>;

/**
 * Translates the manifest, tag, referrers and catalog endpoints of /v2 into service calls and
 * back; called in process by the embedded gateway, or by the manifests app's controller.
 */
@Injectable()
export class ManifestsHandler implements V2Handler {
  constructor(
    private readonly manifests: ManifestService,
    private readonly tags: TagService,
  ) {}

  async handle(x: V2Exchange): Promise<void> {
    const route = x.route as ManifestsRoute;
    const method = x.req.method;
    if (route.kind !== 'catalog') assertRepositoryName(route.name);
    switch (route.kind) {
      case 'manifest':
        if (method === 'GET' || method === 'HEAD') return this.getManifest(x, route.name, route.reference);
        if (method === 'PUT') return this.putManifest(x, route.name, route.reference);
        if (method === 'DELETE') return this.deleteManifest(x, route.name, route.reference);
        break;
      case 'tags':
        if (method === 'GET' || method === 'HEAD') {
          const page = await this.tags.listTags(route.name, x.query.get('n'), x.query.get('last'));
          return replyJson(x.res, 200, { name: route.name, tags: page.items }, linkHeader(v2Paths.tags(route.name), page));
        }
        break;
      case 'catalog':
        if (method === 'GET' || method === 'HEAD') {
          const page = await this.tags.listRepositories(x.query.get('n'), x.query.get('last'));
          return replyJson(x.res, 200, { repositories: page.items }, linkHeader(v2Paths.catalog(), page));
        }
        break;
      case 'referrers':
        if (method === 'GET' || method === 'HEAD') return this.getReferrers(x, route.name, route.digest);
        break;
    }
    throw new UnsupportedError(`${method} is not supported here`);
  }

  private async getManifest(x: V2Exchange, name: string, reference: string): Promise<void> {
    const m = await this.manifests.getManifest(name, reference);
    reply(
      x.res,
      200,
      { 'Content-Type': m.mediaType, 'Content-Length': m.payload.length, 'Docker-Content-Digest': m.digest, ETag: `"${m.digest}"` },
      m.payload,
    );
  }

  private async putManifest(x: V2Exchange, name: string, reference: string): Promise<void> {
    const body = await readBody(x.req, this.manifests.maxManifestSize);
    const result = await this.manifests.putManifest(name, reference, body, x.req.headers['content-type'], x.ctx, (d) =>
      externalUrl(x, v2Paths.manifest(name, d)),
    );
    const headers: Record<string, string> = {
      Location: v2Paths.manifest(name, result.digest),
      'Docker-Content-Digest': result.digest,
    };
    if (result.subject) headers['OCI-Subject'] = result.subject;
    reply(x.res, 201, headers);
  }

  private async deleteManifest(x: V2Exchange, name: string, reference: string): Promise<void> {
    await this.manifests.deleteManifest(name, reference, x.ctx, externalUrl(x, v2Paths.manifest(name, reference)));
    reply(x.res, 202);
  }

  private async getReferrers(x: V2Exchange, name: string, digest: string): Promise<void> {
    const artifactType = x.query.get('artifactType') ?? undefined;
    const index = await this.manifests.listReferrers(name, digest, artifactType);
    const headers: Record<string, string> = { 'Content-Type': OCI_INDEX_MEDIA_TYPE };
    if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
    reply(x.res, 200, headers, JSON.stringify(index));
  }
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

function linkHeader(path: string, page: Page): Record<string, string> {
  if (!page.next) return {};
  const q = new URLSearchParams({ last: page.next.last, n: String(page.next.n) });
  return { Link: `<${path}?${q.toString()}>; rel="next"` };
}
