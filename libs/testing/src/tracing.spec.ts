import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { context, SpanKind, trace, type Context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType, setRPCMetadata, suppressTracing } from '@opentelemetry/core';
import { Histogram, register } from 'prom-client';
import {
  continuing,
  markUnsampled,
  parseV2Path,
  resolveOperation,
  systemScope,
  tracer,
  traceparentOf,
  untraced,
  withSpan,
  withSpansEach,
  type RequestScope,
} from '@lading/contracts';
import { blobEvent, MetadataDb, PullEventBuffer } from '@lading/metadata-db';
import { forwardedParent, requestTraceparent, toExchange, traceV2Request, type V2Exchange } from '@lading/nest-common';
import {
  FilesystemBlobStorage,
  InstrumentedBlobStorage,
  MemoryBlobStorage,
  STORAGE_ACTION_SECONDS,
  sendBlob,
} from '@lading/storage';
import { useMemoryMetadataDb } from './metadata-db';
import { recordSpans } from './tracing';

const spans = recordSpans();
beforeEach(() => spans.reset());

/** A context as the HTTP instrumentation makes one for an incoming request: its server span, active. */
function serverContext(): Context {
  const server = tracer().startSpan('POST');
  const ctx = trace.setSpan(context.active(), server);
  return setRPCMetadata(ctx, { type: RPCType.HTTP, span: server });
}

function exchange(
  path: string,
  method: string,
  scope: Partial<RequestScope> = {},
  answer: Record<string, string> = {},
): V2Exchange {
  const route = parseV2Path(path)!;
  const operation = resolveOperation(route, method)!;
  const full = { ...systemScope(operation.name, 'library/app'), ...scope };
  const res = { getHeader: (k: string) => answer[k.toLowerCase()], writeHead: () => res };
  return toExchange(route, operation, full, { originalUrl: path } as never, res as never);
}

describe('request spans', () => {
  it("puts the HTTP server span's context in the request scope", () => {
    const ctx = serverContext();
    const server = trace.getSpan(ctx)!;
    const inner = trace.setSpan(ctx, tracer().startSpan('request handler', {}, ctx));
    expect(context.with(inner, () => requestTraceparent())).toBe(traceparentOf(trace.setSpan(ctx, server)));
  });

  it('serves a request in a span named after its operation, with the oci attributes and the route template', async () => {
    const ctx = serverContext();
    const x = exchange(
      '/v2/library/app/blobs/uploads/',
      'POST',
      {},
      { 'docker-upload-uuid': '6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a' },
    );
    await context.with(ctx, () => traceV2Request(x, async () => void x.res.writeHead(202)));
    trace.getSpan(ctx)!.end();
    const [op] = spans.named('upload.start');
    expect(op.parentSpanContext?.spanId).toBe(trace.getSpan(ctx)!.spanContext().spanId);
    expect(op.attributes).toMatchObject({
      'oci.operation': 'upload.start',
      'oci.repository': 'library/app',
      'oci.upload.session_id': '6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a',
    });
    // What the answer told goes on the server span too, so every request of the session carries it.
    expect(spans.named('POST')[0].attributes['oci.upload.session_id']).toBe('6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a');
    expect(getRPCMetadata(ctx)!.route).toBe('/v2/{name}/blobs/uploads/');
  });

  it('names the reference and digest a route carries', async () => {
    const x = exchange(
      '/v2/library/app/manifests/v1',
      'PUT',
      {},
      { 'docker-content-digest': `sha256:${'a'.repeat(64)}` },
    );
    await context.with(serverContext(), () => traceV2Request(x, async () => void x.res.writeHead(201)));
    expect(spans.named('manifest.put')[0].attributes).toMatchObject({
      'oci.reference': 'v1',
      'oci.digest': `sha256:${'a'.repeat(64)}`,
    });
  });

  it('marks the span failed when serving throws', async () => {
    const x = exchange('/v2/library/app/manifests/v1', 'GET');
    await expect(
      context.with(serverContext(), () => traceV2Request(x, () => Promise.reject(new Error('boom')))),
    ).rejects.toThrow('boom');
    expect(spans.named('manifest.get')[0].status.code).toBe(2);
  });

  it("continues the signed scope's trace when the active span is in another one", async () => {
    const gateway = tracer().startSpan('gateway');
    const signed = traceparentOf(trace.setSpan(context.active(), gateway))!;
    const sameTrace = trace.setSpan(
      context.active(),
      tracer().startSpan('server', {}, trace.setSpan(context.active(), gateway)),
    );
    const scope = { ...systemScope('manifest.get', 'library/app'), traceparent: signed };
    expect(trace.getSpan(context.with(sameTrace, () => forwardedParent(scope))!)).toBe(trace.getSpan(sameTrace));
    const foreign = context.with(serverContext(), () => forwardedParent(scope));
    expect(trace.getSpanContext(foreign!)?.spanId).toBe(gateway.spanContext().spanId);
  });
});

describe('a request the sampler dropped at the door (no span, no context)', () => {
  it('makes no span at all, not even a non-recording one, and its scope carries the unsampled traceparent on', async () => {
    const carried = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const x = exchange('/v2/library/app/manifests/v1', 'GET', { traceparent: carried });
    const seen: (string | undefined)[] = [];
    await traceV2Request(x, async () => {
      await withSpan('inner', {}, async (span) => void seen.push(span.spanContext().traceId));
    });
    expect(spans.spans()).toEqual([]);
    expect(seen).toEqual(['00000000000000000000000000000000']);
    const req = {};
    expect(requestTraceparent(req)).toBeNull();
    markUnsampled(req, carried);
    expect(requestTraceparent(req)).toBe(carried);
    expect(untraced()).toBe(true);
    expect(context.with(serverContext(), () => untraced())).toBe(false);
    expect(context.with(suppressTracing(serverContext()), () => untraced())).toBe(true);
  });

  it('makes a storage span only under a parent', async () => {
    const storage = new InstrumentedBlobStorage(new MemoryBlobStorage());
    const id = '6f1c1b8e-0c4e-4f47-9b59-2f1a0e6c1d2a';
    await storage.uploadExists(id);
    expect(spans.named('storage.uploadExists')).toHaveLength(0);
    await context.with(serverContext(), () => storage.uploadExists(id));
    expect(spans.named('storage.uploadExists')).toHaveLength(1);
  });
});

describe('storage spans and timings', () => {
  const digest = `sha256:${'0'.repeat(64)}`;
  const id = '0b9f5c52-8e0a-4a7b-9a51-3f1c2d4e5f60';
  const seconds = () => register.getSingleMetric(STORAGE_ACTION_SECONDS) as Histogram;
  // Summed over drivers: tests here time calls on more than one.
  const countOf = async (action: string) =>
    (await seconds().get()).values
      .filter((v) => v.metricName === `${STORAGE_ACTION_SECONDS}_count` && v.labels.action === action)
      .reduce((sum, v) => sum + v.value, 0);

  it('times and traces a write with the bytes it stored, and a read until its stream closes', () =>
    context.with(serverContext(), async () => {
      const storage = new InstrumentedBlobStorage(new MemoryBlobStorage());
      const writesBefore = await countOf('writePart');
      await storage.createUpload(id);
      const body = Buffer.alloc(3000, 7);
      const seen: number[] = [];
      const { parts } = await storage.writePart(id, [], Readable.from([body.subarray(0, 1000), body.subarray(1000)]), {
        onData: (c) => seen.push(c.length),
      });
      expect(seen).toEqual([1000, 2000]); // the caller's onData still sees every chunk
      const stream = await storage.readUpload(id, parts, { start: 0, end: 1499 });
      expect(spans.named('storage.readUpload')).toHaveLength(0); // still reading
      let read = 0;
      for await (const c of stream) read += (c as Buffer).length;
      await new Promise((r) => setImmediate(r));
      expect(read).toBe(1500);
      const [write] = spans.named('storage.writePart');
      expect(write.attributes).toMatchObject({
        'lading.storage.driver': 'inmemory',
        'lading.storage.bytes': 3000,
        'oci.upload.session_id': id,
      });
      expect(spans.named('storage.readUpload')[0].attributes['lading.storage.bytes']).toBe(1500);
      expect(await countOf('writePart')).toBe(writesBefore + 1);
      expect(await countOf('readUpload')).toBeGreaterThanOrEqual(1);
    }));

  it('counts the bytes of a read sent with sendBlob (no push, no data events), and times it until the file closes', () =>
    context.with(serverContext(), async () => {
      const root = await mkdtemp(join(tmpdir(), 'lading-tracing-'));
      try {
        const storage = new InstrumentedBlobStorage(new FilesystemBlobStorage({ rootDirectory: root }));
        const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 3);
        const blob = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        await storage.createUpload(id);
        const { parts } = await storage.writePart(id, [], Readable.from([bytes]));
        await storage.commitUpload(id, parts, blob);
        const before = await countOf('readBlob');
        const stream = await storage.readBlob(blob, { start: 5, end: 2 * 1024 * 1024 });
        let got = 0;
        await sendBlob(stream, new Writable({ write: (c: Buffer, _e, cb) => void ((got += c.length), cb()) }));
        if (!stream.closed) await once(stream, 'close');
        expect(got).toBe(2 * 1024 * 1024 - 4);
        const [span] = spans.named('storage.readBlob');
        expect(span.attributes).toMatchObject({
          'lading.storage.driver': 'filesystem',
          'lading.storage.bytes': got,
          'oci.digest': blob,
        });
        expect(span.status.code).not.toBe(2);
        expect(await countOf('readBlob')).toBe(before + 1);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    }));

  it('marks a read failed when its destination goes away during sendBlob', () =>
    context.with(serverContext(), async () => {
      const root = await mkdtemp(join(tmpdir(), 'lading-tracing-'));
      try {
        const storage = new InstrumentedBlobStorage(new FilesystemBlobStorage({ rootDirectory: root }));
        const bytes = Buffer.alloc(4 * 1024 * 1024, 5);
        const blob = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        await storage.createUpload(id);
        const { parts } = await storage.writePart(id, [], Readable.from([bytes]));
        await storage.commitUpload(id, parts, blob);
        const stream = await storage.readBlob(blob);
        const gone = new Writable({
          write(_c, _e, _cb) {
            this.destroy();
          },
        });
        await expect(sendBlob(stream, gone)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
        if (!stream.closed) await once(stream, 'close');
        const [span] = spans.named('storage.readBlob');
        expect(span.status.code).toBe(2);
        expect(span.attributes['lading.storage.bytes']).toBe(1024 * 1024); // the one chunk handed over before it went
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    }));

  it('marks a failed call, and still times it', () =>
    context.with(serverContext(), async () => {
      const storage = new InstrumentedBlobStorage(new MemoryBlobStorage());
      const before = await countOf('readBlob');
      await expect(storage.readBlob(digest)).rejects.toThrow();
      const [span] = spans.named('storage.readBlob');
      expect(span.status.code).toBe(2);
      expect(span.attributes['oci.digest']).toBe(digest);
      expect(await countOf('readBlob')).toBe(before + 1);
    }));
});

describe('store spans', () => {
  const m = useMemoryMetadataDb();
  const id = '5e0c8a3f-2b1d-4c6e-8f7a-9d0b1c2e3f40';

  it('traces each store call under the request, with its statements (PGlite has no instrumentation)', async () => {
    const db = new MetadataDb(m.db.dataSource); // built with tracing on
    await context.with(serverContext(), () =>
      withSpan('request', {}, () => db.read.uploads.createSession(id, 'traced/app', null)),
    );
    const [call] = spans.named('store.uploads.createSession');
    expect(call.attributes).toMatchObject({ 'lading.store': 'uploads', 'db.system.name': 'postgresql' });
    const [insert] = spans.named('INSERT');
    expect(insert.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    expect(insert.attributes['db.query.text']).toMatch(/^INSERT INTO upload_sessions/);
    expect(call.parentSpanContext?.spanId).toBe(spans.named('request')[0].spanContext().spanId);
  });

  it('puts a transaction and its calls in one span; makes none outside a traced request', async () => {
    const db = new MetadataDb(m.db.dataSource);
    await db.transaction((tx) => tx.uploads.findSession('traced/app', id));
    expect(spans.spans()).toHaveLength(0);
    await context.with(serverContext(), () =>
      withSpan('request', {}, () => db.transaction((tx) => tx.uploads.findSession('traced/app', id))),
    );
    const [txSpan] = spans.named('store.transaction');
    expect(spans.named('store.uploads.findSession')[0].parentSpanContext?.spanId).toBe(txSpan.spanContext().spanId);
  });

  it("writes a batch of pull events in no request's trace: the pull that fills it gets no store spans, its event keeps its traceparent", async () => {
    const db = new MetadataDb(m.db.dataSource);
    const buffer = new PullEventBuffer(db, { enabled: true, flushIntervalMs: 60_000, maxBatch: 2, maxBuffered: 10 });
    const pull = blobEvent('pull', 'traced/app', { digest: `sha256:${'c'.repeat(64)}`, size: 3 }, 'http://x');
    let traceparent: string | null = null;
    await context.with(serverContext(), () =>
      withSpan('request', {}, async () => {
        traceparent = traceparentOf();
        buffer.record({ ...systemScope('blob.get', 'traced/app'), traceparent }, pull);
        buffer.record({ ...systemScope('blob.get', 'traced/app'), traceparent }, pull); // the batch is full: written now
        await buffer.flush();
      }),
    );
    expect(buffer.stats()).toMatchObject({ written: 2, pending: 0 });
    expect(spans.spans().map((s) => s.name)).toEqual(['request']);
    const rows: { traceparent: string }[] = await m.db.dataSource.query('SELECT traceparent FROM event_outbox ORDER BY seq DESC LIMIT 2');
    expect(rows.map((r) => r.traceparent)).toEqual([traceparent, traceparent]);
  });
});

describe('withSpansEach (outbox rows, Kafka records, webhook deliveries)', () => {
  it("gives each item with a traceparent a span in that trace, passes the span's context on, and fails them all on an error", async () => {
    const a = traceparentOf(trace.setSpan(context.active(), tracer().startSpan('request a')))!;
    const b = traceparentOf(trace.setSpan(context.active(), tracer().startSpan('request b')))!;
    const passed = await withSpansEach(
      'publish',
      SpanKind.PRODUCER,
      [a, null, b],
      (i) => ({ attributes: { n: i } }),
      async (passOn) => passOn,
    );
    const made = spans.named('publish');
    expect(made.map((s) => s.attributes.n)).toEqual([0, 2]);
    expect(made.map((s) => s.spanContext().traceId)).toEqual([a.split('-')[1], b.split('-')[1]]);
    expect(made[0].parentSpanContext?.spanId).toBe(a.split('-')[2]);
    expect(passed).toEqual([
      traceparentOf(trace.setSpan(context.active(), made[0] as never)),
      null,
      traceparentOf(trace.setSpan(context.active(), made[1] as never)),
    ]);
    spans.reset();
    await expect(
      withSpansEach(
        'publish',
        SpanKind.PRODUCER,
        [a, b],
        () => ({}),
        () => Promise.reject(new Error('broker down')),
      ),
    ).rejects.toThrow('broker down');
    expect(spans.named('publish').map((s) => s.status.code)).toEqual([2, 2]);
  });

  it("makes no span for an item whose request was not sampled, and passes that item's traceparent on as it is", async () => {
    const sampled = traceparentOf(trace.setSpan(context.active(), tracer().startSpan('request a')))!;
    const dropped = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const passed = await withSpansEach(
      'publish',
      SpanKind.PRODUCER,
      [dropped, sampled],
      (i) => ({ attributes: { n: i } }),
      async (passOn) => passOn,
    );
    expect(spans.named('publish').map((s) => s.attributes.n)).toEqual([1]);
    expect(passed[0]).toBe(dropped);
  });

  it('continues a trace under the active span when that is already in it, else from the traceparent', () => {
    const request = tracer().startSpan('request');
    const tp = traceparentOf(trace.setSpan(context.active(), request))!;
    const inTrace = trace.setSpan(
      context.active(),
      tracer().startSpan('process', {}, trace.setSpan(context.active(), request)),
    );
    expect(continuing(tp, inTrace)).toBe(inTrace);
    expect(trace.getSpanContext(continuing(tp, serverContext()))?.spanId).toBe(request.spanContext().spanId);
  });
});
