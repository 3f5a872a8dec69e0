/**
 * Routes as data: every /v2 route kind × HTTP method maps to one operation, the service that
 * serves it and the action a caller needs. The gateway and both services dispatch from this table;
 * token scopes, span names and metric labels come from it as well, so a route is described once.
 */
import type { V2Route, V2Service } from './v2-route';

/** The action a caller needs on the repository (or the registry, for the catalog). */
export type V2Action = 'pull' | 'push' | 'delete' | 'catalog';

/** The HTTP methods the /v2 API answers. */
export type V2Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Every operation of the /v2 API, named `<resource>.<verb>`. */
export type V2OperationName =
  | 'base.check'
  | 'catalog.list'
  | 'tags.list'
  | 'manifest.get'
  | 'manifest.head'
  | 'manifest.put'
  | 'manifest.delete'
  | 'referrers.list'
  | 'blob.get'
  | 'blob.head'
  | 'blob.delete'
  | 'upload.start'
  | 'upload.status'
  | 'upload.append'
  | 'upload.complete'
  | 'upload.cancel';

/** One row of the table. */
export interface V2Operation {
  readonly name: V2OperationName;
  /** The service that serves it (`gateway` for the base endpoint). */
  readonly service: V2Service;
  /** What the caller needs; `null` for the base endpoint, which only checks authentication. */
  readonly action: V2Action | null;
}

const op = (name: V2OperationName, service: V2Service, action: V2Action | null): V2Operation =>
  Object.freeze({ name, service, action });

/** The table: route kind → method → operation. A missing method is 405 UNSUPPORTED. */
export const V2_OPERATIONS: Readonly<Record<V2Route['kind'], Readonly<Partial<Record<V2Method, V2Operation>>>>> = {
  base: { GET: op('base.check', 'gateway', null), HEAD: op('base.check', 'gateway', null) },
  catalog: { GET: op('catalog.list', 'manifests', 'catalog'), HEAD: op('catalog.list', 'manifests', 'catalog') },
  tags: { GET: op('tags.list', 'manifests', 'pull'), HEAD: op('tags.list', 'manifests', 'pull') },
  manifest: {
    GET: op('manifest.get', 'manifests', 'pull'),
    HEAD: op('manifest.head', 'manifests', 'pull'),
    PUT: op('manifest.put', 'manifests', 'push'),
    DELETE: op('manifest.delete', 'manifests', 'delete'),
  },
  referrers: { GET: op('referrers.list', 'manifests', 'pull'), HEAD: op('referrers.list', 'manifests', 'pull') },
  blob: {
    GET: op('blob.get', 'blob-upload', 'pull'),
    HEAD: op('blob.head', 'blob-upload', 'pull'),
    DELETE: op('blob.delete', 'blob-upload', 'delete'),
  },
  'upload-start': { POST: op('upload.start', 'blob-upload', 'push') },
  upload: {
    GET: op('upload.status', 'blob-upload', 'push'),
    PATCH: op('upload.append', 'blob-upload', 'push'),
    PUT: op('upload.complete', 'blob-upload', 'push'),
    DELETE: op('upload.cancel', 'blob-upload', 'push'),
  },
};

/** The operation for `method` on `route`, or undefined when the route does not answer it (405). */
export function resolveOperation(route: V2Route, method: string): V2Operation | undefined {
  return V2_OPERATIONS[route.kind][method as V2Method];
}

/** Every operation name in the table, once each (for metrics and tests). */
export function allOperationNames(): V2OperationName[] {
  const names = new Set<V2OperationName>();
  for (const methods of Object.values(V2_OPERATIONS)) for (const o of Object.values(methods)) if (o) names.add(o.name);
  return [...names];
}
