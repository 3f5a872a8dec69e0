/**
 * The /v2 API surface as data: one parser turns a request path into a typed route, so the gateway
 * and the services agree on what a path means. Names are not validated here (the caller does,
 * so that a bad name gets NAME_INVALID rather than "no such endpoint").
 */

/** Which service owns a route. */
export type V2Service = 'gateway' | 'blob-upload' | 'manifests';

/** A parsed /v2 path. `name` is the repository path as it appeared in the URL. */
export type V2Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload-start'; name: string }
  | { kind: 'upload'; name: string; uploadId: string };

// `blobs/uploads` is a whole segment: the session id follows a slash, so `blobs/uploadsXYZ` is a
// blob path (with an invalid digest), not the upload `XYZ`.
const ROUTE_PATTERN =
  /^\/v2\/(.+)\/(?:(blobs\/uploads)(?:\/([^/]*))?|blobs\/([^/]+)|manifests\/([^/]+)|tags\/list|referrers\/([^/]+))$/;

/** Parses a URL path (no query string) into a route, or `null` when it is not a /v2 endpoint. */
export function parseV2Path(path: string): V2Route | null {
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  const m = ROUTE_PATTERN.exec(path);
  if (!m) return null;
  const name = m[1];
  const [, , uploads, uploadId, blobDigest, manifestRef, referrersDigest] = m;
  if (uploads !== undefined) {
    return uploadId ? { kind: 'upload', name, uploadId } : { kind: 'upload-start', name };
  }
  if (blobDigest !== undefined) return { kind: 'blob', name, digest: safeDecode(blobDigest) };
  if (manifestRef !== undefined) return { kind: 'manifest', name, reference: safeDecode(manifestRef) };
  if (referrersDigest !== undefined) return { kind: 'referrers', name, digest: safeDecode(referrersDigest) };
  return { kind: 'tags', name };
}

/** The service that serves a route. */
export function serviceOf(route: V2Route): V2Service {
  switch (route.kind) {
    case 'base':
      return 'gateway';
    case 'blob':
    case 'upload-start':
    case 'upload':
      return 'blob-upload';
    default:
      return 'manifests';
  }
}

/** The repository a route acts on, if any. */
export function repositoryOf(route: V2Route): string | undefined {
  return 'name' in route ? route.name : undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Path builders, so Location headers are written one way. */
export const v2Paths = {
  blob: (name: string, digest: string) => `/v2/${name}/blobs/${digest}`,
  upload: (name: string, uploadId: string) => `/v2/${name}/blobs/uploads/${uploadId}`,
  manifest: (name: string, reference: string) => `/v2/${name}/manifests/${reference}`,
  tags: (name: string) => `/v2/${name}/tags/list`,
  catalog: () => `/v2/_catalog`,
  referrers: (name: string, digest: string) => `/v2/${name}/referrers/${digest}`,
} as const;

/**
 * The route's path template, as OpenTelemetry's `http.route` wants it (low cardinality: the
 * repository, reference, digest and session are the `oci.*` span attributes instead).
 */
export function routeTemplate(route: V2Route): string {
  switch (route.kind) {
    case 'base':
      return '/v2/';
    case 'catalog':
      return '/v2/_catalog';
    case 'tags':
      return '/v2/{name}/tags/list';
    case 'manifest':
      return '/v2/{name}/manifests/{reference}';
    case 'referrers':
      return '/v2/{name}/referrers/{digest}';
    case 'blob':
      return '/v2/{name}/blobs/{digest}';
    case 'upload-start':
      return '/v2/{name}/blobs/uploads/';
    case 'upload':
      return '/v2/{name}/blobs/uploads/{uuid}';
  }
}
