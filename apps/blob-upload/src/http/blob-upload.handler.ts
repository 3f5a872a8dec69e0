import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { BlobUploadInvalidError, UnsupportedError, v2Paths, type V2OperationName, type V2Route } from '@lading/contracts';
import { isDigest } from '@lading/manifest';
import { assertRepositoryName } from '@lading/reference';
import { repositoryOf } from '../scope';
import { externalUrl, reply, type V2Exchange, type V2Handler } from '@lading/nest-common';
import { sendBlob } from '@lading/storage';
import { BlobService } from '../blobs/blob.service';
import { UploadService, type ChunkInput } from '../uploads/upload.service';

type BlobRoute = Extract<V2Route, { kind: 'blob' | 'upload-start' | 'upload' }>;
type BlobOperation = Extract<
  V2OperationName,
  'blob.get' | 'blob.head' | 'blob.delete' | 'upload.start' | 'upload.status' | 'upload.append' | 'upload.complete' | 'upload.cancel'
>;

/**
 * Translates the blob and upload endpoints of /v2 into service calls and back, dispatching on the
 * operation the gateway resolved from the operation table. The gateway calls it in process
 * (embedded) and the blob-upload app's controller calls it for forwarded requests.
 */
@Injectable()
export class BlobUploadHandler implements V2Handler {
  private readonly operations: Record<BlobOperation, (x: V2Exchange, route: BlobRoute) => Promise<void>> = {
    'upload.start': (x) => this.postUpload(x),
    'upload.status': (x, r) => this.uploadStatus(x, uploadIdOf(r)),
    'upload.append': (x, r) => this.patchUpload(x, uploadIdOf(r)),
    'upload.complete': (x, r) => this.putUpload(x, uploadIdOf(r)),
    'upload.cancel': (x, r) => this.deleteUpload(x, uploadIdOf(r)),
    'blob.get': (x, r) => this.getBlob(x, digestOf(r)),
    'blob.head': (x, r) => this.headBlob(x, digestOf(r)),
    'blob.delete': (x, r) => this.deleteBlob(x, digestOf(r)),
  };

  constructor(
    private readonly uploads: UploadService,
    private readonly blobs: BlobService,
  ) {}

  async handle(x: V2Exchange): Promise<void> {
    const serve = this.operations[x.operation.name as BlobOperation];
    if (!serve) throw new UnsupportedError(`${x.req.method} is not supported here`);
    return serve(x, x.route as BlobRoute);
  }

  private async postUpload(x: V2Exchange): Promise<void> {
    const name = repositoryOf(x.scope);
    const mount = x.query.get('mount');
    const from = x.query.get('from');
    if (mount && from && isRepositoryName(from) && isDigest(mount)) {
      const url = blobUrl(x, name, mount);
      if (await this.uploads.mountBlob(x.scope, from, mount, url)) {
        return reply(x.res, 201, { Location: v2Paths.blob(name, mount), 'Docker-Content-Digest': mount });
      }
    }
    const digest = x.query.get('digest');
    if (digest) {
      const blob = await this.uploads.pushMonolithic(x.scope, digest, chunkOf(x.req, false), (d) => blobUrl(x, name, d));
      return reply(x.res, 201, { Location: v2Paths.blob(name, blob.digest), 'Docker-Content-Digest': blob.digest });
    }
    await drainEmpty(x.req);
    const session = await this.uploads.startUpload(x.scope);
    return this.sessionReply(x, session.id, 0, 202);
  }

  private async uploadStatus(x: V2Exchange, id: string): Promise<void> {
    const session = await this.uploads.getUpload(x.scope, id);
    return this.sessionReply(x, id, session.size, 204);
  }

  private async patchUpload(x: V2Exchange, id: string): Promise<void> {
    const session = await this.uploads.appendChunk(x.scope, id, chunkOf(x.req, true));
    return this.sessionReply(x, id, session.size, 202);
  }

  private async putUpload(x: V2Exchange, id: string): Promise<void> {
    const name = repositoryOf(x.scope);
    const digest = x.query.get('digest');
    if (!digest) throw new BlobUploadInvalidError('the digest query parameter is required');
    const chunk = hasBody(x.req) ? chunkOf(x.req, true) : undefined;
    const blob = await this.uploads.completeUpload(x.scope, id, digest, chunk, (d) => blobUrl(x, name, d));
    return reply(x.res, 201, { Location: v2Paths.blob(name, blob.digest), 'Docker-Content-Digest': blob.digest });
  }

  private async deleteUpload(x: V2Exchange, id: string): Promise<void> {
    await this.uploads.cancelUpload(x.scope, id);
    return reply(x.res, 204);
  }

  private async headBlob(x: V2Exchange, digest: string): Promise<void> {
    const blob = await this.blobs.statBlob(x.scope, digest);
    return reply(x.res, 200, blobHeaders(blob.digest, blob.size));
  }

  private async getBlob(x: V2Exchange, digest: string): Promise<void> {
    const redirect = await this.blobs.redirectBlob(x.scope, digest);
    if (redirect) {
      reply(x.res, 307, { Location: redirect.url, 'Docker-Content-Digest': redirect.blob.digest });
      return this.blobs.blobPulled(x.scope, redirect.blob, blobUrl(x, repositoryOf(x.scope), redirect.blob.digest));
    }
    const read = await this.blobs.openBlob(x.scope, digest, x.req.headers.range);
    const { blob, range } = read;
    const headers = blobHeaders(blob.digest, range ? range.end - range.start + 1 : blob.size);
    if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${blob.size}`;
    x.res.writeHead(range ? 206 : 200, headers);
    await sendBlob(read.stream, x.res);
    this.blobs.blobPulled(x.scope, blob, blobUrl(x, repositoryOf(x.scope), blob.digest));
  }

  private async deleteBlob(x: V2Exchange, digest: string): Promise<void> {
    await this.blobs.deleteBlob(x.scope, digest);
    return reply(x.res, 202);
  }

  private sessionReply(x: V2Exchange, id: string, size: number, status: number): void {
    reply(x.res, status, {
      Location: v2Paths.upload(repositoryOf(x.scope), id),
      Range: `0-${size > 0 ? size - 1 : 0}`,
      'Docker-Upload-UUID': id,
    });
  }
}

function uploadIdOf(route: BlobRoute): string {
  return route.kind === 'upload' ? route.uploadId : '';
}

function digestOf(route: BlobRoute): string {
  return route.kind === 'blob' ? route.digest : '';
}

function blobHeaders(digest: string, length: number): Record<string, string | number> {
  return {
    'Content-Type': 'application/octet-stream',
    'Content-Length': length,
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    ETag: `"${digest}"`,
    'Cache-Control': 'max-age=31536000',
  };
}

/** The body of `req` as a chunk, with its declared length and Content-Range. */
function chunkOf(req: Request, allowRange: boolean): ChunkInput {
  const cl = req.headers['content-length'];
  const length = cl === undefined ? undefined : Number(cl);
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
    throw new BlobUploadInvalidError('invalid Content-Length');
  }
  const cr = req.headers['content-range'];
  let range: ChunkInput['range'];
  if (allowRange && cr !== undefined) {
    // A malformed range is bad input (400); only a well-formed one that does not continue the upload is 416.
    const m = /^(?:bytes[= ])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(cr.trim());
    if (!m) throw new BlobUploadInvalidError('malformed Content-Range', { contentRange: cr });
    range = { start: Number(m[1]), end: Number(m[2]) };
    if (range.end < range.start) throw new BlobUploadInvalidError('Content-Range ends before it starts', { contentRange: cr });
  }
  // Pieces as they arrive: storage batches them into large writes itself (the filesystem through
  // reused slabs; S3 into parts), so nothing here concatenates or holds them.
  return { body: req.iterator({ destroyOnReturn: false }), length, range };
}

function hasBody(req: Request): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return Number(cl) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

async function drainEmpty(req: Request): Promise<void> {
  for await (const _chunk of req) {
    // A session-opening POST carries no body worth keeping; read it so the connection stays usable.
  }
}

function isRepositoryName(s: string): boolean {
  try {
    assertRepositoryName(s);
    return true;
  } catch {
    return false;
  }
}

function blobUrl(x: V2Exchange, name: string, digest: string): string {
  return externalUrl(x, v2Paths.blob(name, digest));
}
