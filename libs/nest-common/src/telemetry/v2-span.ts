import { context, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { Response } from 'express';
import {
  Headers,
  OciAttributes,
  continuing,
  otelCore,
  requestAttributes,
  routeTemplate,
  traceparentOf,
  tracingActive,
  unsampledTraceparentOf,
  untraced,
  withSpan,
  type RequestScope,
  type V2Route,
} from '@lading/contracts';
import type { V2Exchange } from '../http/v2-exchange';

/** The HTTP server span of the request being served here (server-span.ts), if tracing. */
function serverSpan(ctx: Context = context.active()): Span | undefined {
  const { getRPCMetadata, RPCType } = otelCore();
  const rpc = getRPCMetadata(ctx);
  return rpc?.type === RPCType.HTTP ? rpc.span : undefined;
}

/**
 * The `traceparent` a request scope carries: the one the sampler marked `req` with when it dropped
 * it at the door (sampled flag 0), else the context of this process's HTTP server span (the root
 * of the request's trace at the gateway), else of the active span; null when not tracing.
 */
export function requestTraceparent(req?: object): string | null {
  if (!tracingActive()) return null;
  // Dropped at the door: no span, but the decision goes on (sampled flag 0) so no service draws again.
  const unsampled = req && unsampledTraceparentOf(req);
  if (unsampled) return unsampled;
  const server = serverSpan();
  return traceparentOf(server ? trace.setSpan(context.active(), server) : context.active());
}

/**
 * Gives the HTTP server span of the request being served the route's template (`http.route`, and
 * so its name: `GET /v2/{name}/manifests/{reference}`), for every route the table knows, also
 * those the gateway answers itself (`/v2/`) or refuses. Nothing when not tracing this request.
 */
export function nameServerSpan(route: V2Route): void {
  if (untraced()) return;
  const rpc = otelCore().getRPCMetadata(context.active());
  if (rpc) rpc.route = routeTemplate(route);
}

/**
 * Serves one /v2 request in a span named after its operation (`manifest.put`…) with the registry's
 * attributes, and gives the HTTP server span the route's template (`http.route`, hence its name)
 * and the same attributes. What the answer reveals — the upload session a POST opened, the digest
 * a PUT stored — is added to both once `serve` is done, so every request of one upload session
 * carries its id. `parent` overrides the active context (a service continuing the signed scope).
 */
export function traceV2Request(x: V2Exchange, serve: () => Promise<void>, parent?: Context): Promise<void> {
  if (untraced(parent)) return serve();
  const server = serverSpan();
  nameServerSpan(x.route);
  const attributes = requestAttributes(x.scope, x.route);
  server?.setAttributes(attributes);
  return withSpan(x.operation.name, { attributes, parent }, async (span) => {
    // When the answer's head goes out: the server span ends with the response, maybe before `serve` returns.
    const res = x.res;
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: unknown[]) {
      const learned = answerAttributes(res);
      span.setAttributes(learned);
      server?.setAttributes(learned);
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as Response['writeHead'];
    try {
      await serve();
    } finally {
      res.writeHead = writeHead;
    }
  });
}

/**
 * Where a service's spans of a forwarded request hang: under the active span (the HTTP server
 * span, a child of the gateway's call) when that is in the trace the signed scope names, else
 * directly under the scope's `traceparent`: the signed scope, not a bare header, decides the trace.
 * Undefined (the active context) when not tracing or the scope has no trace.
 */
export function forwardedParent(scope: RequestScope): Context | undefined {
  return !untraced() && scope.traceparent ? continuing(scope.traceparent) : undefined;
}

function answerAttributes(res: Response): Attributes {
  const a: Attributes = {};
  const uuid = res.getHeader(Headers.uploadUuid);
  if (typeof uuid === 'string') a[OciAttributes.uploadSession] = uuid;
  const digest = res.getHeader(Headers.contentDigest);
  if (typeof digest === 'string') a[OciAttributes.digest] = digest;
  return a;
}
