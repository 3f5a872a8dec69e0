import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { context, ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { encodeRequestScope, systemScope } from '@lading/contracts';
import { createRootLogger, PinoNestLogger, requestIdOf, withRequestId } from './logging';

/** A synchronous context manager (what a tracing SDK installs), enough for `context.with`. */
class StackContextManager implements ContextManager {
  private stack: Context[] = [];
  active(): Context {
    return this.stack[this.stack.length - 1] ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.stack = [];
    return this;
  }
}

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

function captured(formatter: 'json' | 'text'): { logger: ReturnType<typeof createRootLogger>; lines: () => string[] } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  return {
    logger: createRootLogger({ level: 'info', formatter }, out),
    lines: () => text.split('\n').filter((l) => l !== ''),
  };
}

describe('requestIdOf', () => {
  it.each([
    [
      'the id of a forwarded request scope',
      {
        'x-lading-scope': encodeRequestScope(systemScope('manifest.get', 'a/b', 'from-the-gateway')),
        'x-request-id': 'client',
      },
      'from-the-gateway',
    ],
    ["the client's sane X-Request-Id", { 'x-request-id': 'abc-123.x:y' }, 'abc-123.x:y'],
  ])('behind the gateway, takes %s', (_what, headers, expected) => {
    expect(requestIdOf(req(headers), true)).toBe(expected);
  });
  it("in a public process, never takes a scope header's id: a client may forge one", () => {
    const forged = {
      'x-lading-scope': encodeRequestScope(systemScope('manifest.get', 'a/b', 'forged')),
      'x-request-id': 'client',
    };
    expect(requestIdOf(req(forged))).toBe('client');
    expect(requestIdOf(req({ 'x-lading-scope': forged['x-lading-scope'] }))).not.toBe('forged');
  });
  it.each([
    ['an X-Request-Id with spaces', { 'x-request-id': 'a b' }],
    ['an X-Request-Id that is too long', { 'x-request-id': 'x'.repeat(129) }],
    ['a malformed scope', { 'x-lading-scope': 'not-base64-json' }],
    ['no header', {}],
  ])('makes a new uuid for %s', (_what, headers) => {
    expect(requestIdOf(req(headers))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('createRootLogger', () => {
  beforeAll(() => context.setGlobalContextManager(new StackContextManager()));
  afterAll(() => context.disable());

  it('writes JSON lines with the level as a word, an ISO time, and no trace ids outside a span', () => {
    const { logger, lines } = captured('json');
    logger.info({ context: 'Test' }, 'hello');
    const line = JSON.parse(lines()[0]);
    expect(line).toMatchObject({ level: 'info', msg: 'hello', context: 'Test' });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(line).not.toHaveProperty('trace_id');
  });

  it('adds trace_id and span_id of the active span to every line', () => {
    const { logger, lines } = captured('json');
    const span = trace.wrapSpanContext({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
    });
    context.with(trace.setSpan(context.active(), span), () => {
      logger.info('one');
      logger.child({ request_id: 'r1' }).warn('two');
    });
    for (const l of lines().map((x) => JSON.parse(x))) {
      expect(l).toMatchObject({ trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' });
    }
    expect(JSON.parse(lines()[1]).request_id).toBe('r1');
  });

  it('writes one human-readable line per entry with the text formatter', () => {
    const { logger, lines } = captured('text');
    logger.info({ context: 'Access', status: '200' }, 'GET /v2/ 200 1ms');
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/v2\/ 200 1ms \{.*"status":"200".*\}$/);
  });
});

describe('withRequestId', () => {
  it('puts request_id on every line logged inside it, across awaits, and on none outside', async () => {
    const { logger, lines } = captured('json');
    logger.info('before');
    await withRequestId('req-1', async () => {
      logger.info('sync');
      await new Promise((ok) => setImmediate(ok));
      logger.child({ context: 'Child' }).info('after an await');
    });
    logger.info('after');
    const got = lines().map((l) => JSON.parse(l));
    expect(got.map((l) => [l.msg, l.request_id])).toEqual([
      ['before', undefined],
      ['sync', 'req-1'],
      ['after an await', 'req-1'],
      ['after', undefined],
    ]);
  });

  it('keeps the ids of concurrent requests apart', async () => {
    const { logger, lines } = captured('json');
    const serve = (id: string) =>
      withRequestId(id, async () => {
        await new Promise((ok) => setImmediate(ok));
        logger.info(id);
      });
    await Promise.all([serve('a'), serve('b'), serve('c')]);
    for (const l of lines().map((x) => JSON.parse(x))) expect(l.request_id).toBe(l.msg);
  });

  it('names the trace an unsampled request carries on (it has no span) on each of its lines', async () => {
    const { logger, lines } = captured('json');
    await withRequestId(
      'req-u',
      async () => logger.info('dropped'),
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
    );
    await withRequestId('req-n', async () => logger.info('untraced'));
    expect(
      lines()
        .map((l) => JSON.parse(l))
        .map((l) => [l.msg, l.request_id, l.trace_id, l.span_id]),
    ).toEqual([
      ['dropped', 'req-u', '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'],
      ['untraced', 'req-n', undefined, undefined],
    ]);
  });
});

describe('PinoNestLogger', () => {
  it.each([
    [
      'a message with its context',
      (n: PinoNestLogger) => n.log('hello', 'Ctx'),
      { level: 'info', msg: 'hello', context: 'Ctx' },
    ],
    ['a message without a context', (n: PinoNestLogger) => n.warn('careful'), { level: 'warn', msg: 'careful' }],
    ['an object as fields', (n: PinoNestLogger) => n.log({ a: 1 }, 'Ctx'), { level: 'info', a: 1, context: 'Ctx' }],
    [
      'an Error as err',
      (n: PinoNestLogger) => n.error(new Error('boom'), 'Ctx'),
      { level: 'error', context: 'Ctx', err: { message: 'boom' } },
    ],
    [
      "Nest's exception handlers' (message, stack, context)",
      (n: PinoNestLogger) => n.error('failed', 'Error: failed\n    at x (y.js:1:1)', 'ExceptionsHandler'),
      {
        level: 'error',
        context: 'ExceptionsHandler',
        err: { message: 'failed', stack: 'Error: failed\n    at x (y.js:1:1)' },
      },
    ],
  ])('writes %s', (_what, write, expected) => {
    const { logger, lines } = captured('json');
    write(new PinoNestLogger(logger));
    expect(lines()).toHaveLength(1);
    expect(JSON.parse(lines()[0])).toMatchObject(expected);
  });

  it('writes nothing below the level', () => {
    const { logger, lines } = captured('json');
    new PinoNestLogger(logger).debug('hidden', 'Ctx');
    expect(lines()).toEqual([]);
  });
});
