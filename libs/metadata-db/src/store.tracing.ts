import { context, SpanKind, trace } from '@opentelemetry/api';
import { failSpan, tracer } from '@lading/contracts';
import type { Queryer, SqlResult } from './queryer';

/** Span attributes of a store call (the aggregate and its method), beside the `db.*` conventions. */
export const StoreAttributes = {
  store: 'lading.store',
  method: 'lading.store.method',
} as const;

const DB_SYSTEM = { 'db.system.name': 'postgresql' } as const;

/**
 * Runs `call` in a client span `name`, active while it runs (the `pg` instrumentation's query spans
 * become its children), ended when its promise settles; a call that returns no promise (an
 * iterator) ends its span at once. No span without a parent span.
 */
function inSpan<T>(name: string, attributes: Record<string, string>, call: () => T): T {
  // Under a request or a relay batch only, as the `pg` instrumentation is set up: a poll loop's
  // statements would each start a trace of their own.
  if (!trace.getSpan(context.active())) return call();
  const span = tracer().startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...DB_SYSTEM, ...attributes } });
  let result: T;
  try {
    result = context.with(trace.setSpan(context.active(), span), call);
  } catch (e) {
    failSpan(span, e);
    span.end();
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v: unknown) => {
        span.end();
        return v;
      },
      (e: unknown) => {
        failSpan(span, e);
        span.end();
        throw e;
      },
    ) as T;
  }
  span.end();
  return result;
}

/**
 * The store with every method call in a span `store.<aggregate>.<method>` (`store.manifests.putManifest`).
 * Only the calls the apps make are wrapped: a store calling another store inside uses the bare one.
 */
export function tracedStore<T extends object>(aggregate: string, store: T): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function' || typeof key !== 'string' || key === 'constructor') return value;
      let fn = wrapped.get(key);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]) =>
          inSpan(`store.${aggregate}.${key}`, { [StoreAttributes.store]: aggregate, [StoreAttributes.method]: key }, () =>
            method.apply(target, args),
          );
        wrapped.set(key, fn);
      }
      return fn;
    },
  });
}

/** A unit of work in a span `store.transaction`, its statements' spans under it. */
export function tracedTransaction<T>(work: () => Promise<T>): Promise<T> {
  return inSpan('store.transaction', {}, work);
}

/**
 * A Queryer whose every statement is a client span, as the `pg` instrumentation would make one:
 * for PGlite, which runs in process and has no instrumentation. Named `<operation>` (the
 * statement's first keyword), with `db.query.text` (parameterised: no values in it).
 */
export function tracedQueryer(q: Queryer): Queryer {
  return {
    query<T>(text: string, params?: unknown[]): Promise<SqlResult<T>> {
      const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
      return inSpan(operation, { 'db.operation.name': operation, 'db.query.text': text }, () => q.query<T>(text, params));
    },
  };
}
