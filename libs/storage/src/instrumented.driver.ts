import type { Readable } from 'node:stream';
import { context, SpanKind, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Histogram } from 'prom-client';
import { OciAttributes, failSpan, tracer, untraced } from '@lading/contracts';
import { isSendableBlobStream } from './blob-storage.support';
import type {
  BlobInfo,
  BlobStat,
  BlobStorage,
  ByteRange,
  UploadInfo,
  UploadPart,
  WritePartOptions,
  WritePartResult,
} from './blob-storage.port';

/** The histogram of storage calls, in prom-client's default registry (served on /metrics). */
export const STORAGE_ACTION_SECONDS = 'registry_storage_action_seconds';

/** Span attributes of a storage call. */
export const StorageAttributes = {
  driver: 'lading.storage.driver',
  /** Bytes written (a part) or read (a stream, counted as it is read). */
  bytes: 'lading.storage.bytes',
  parts: 'lading.storage.parts',
} as const;

function actionSeconds(): Histogram<'driver' | 'action'> {
  // Loaded with the first driver, not with this library: a command line that builds none
  // (`lading events`) does not pay for prom-client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  const { Histogram, register } = require('prom-client') as typeof import('prom-client');
  // One per process, whichever driver object asks first (tests build many).
  const existing = register.getSingleMetric(STORAGE_ACTION_SECONDS) as Histogram<'driver' | 'action'> | undefined;
  return (
    existing ??
    new Histogram({
      name: STORAGE_ACTION_SECONDS,
      help: 'Duration of storage driver calls (a read: until its stream closes), by driver and action',
      labelNames: ['driver', 'action'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    })
  );
}

/**
 * A storage driver that records every call it passes on: the time it took in the histogram
 * `registry_storage_action_seconds{driver,action}` (the action is the port's method name), and,
 * when tracing, a client span `storage.<action>` with the driver, the key (digest or upload
 * session) and the bytes moved. A read lasts until its stream closes (a `SendableBlobStream`'s
 * bytes are counted as `sendTo` hands them on). Listings pass through
 * untimed: they are walks, not calls. Behaviour is the inner driver's, errors included.
 */
export class InstrumentedBlobStorage implements BlobStorage {
  readonly driverName: string;
  readonly minPartSize: number;
  readonly blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string | null>;
  private readonly seconds = actionSeconds();

  constructor(private readonly inner: BlobStorage) {
    this.driverName = inner.driverName;
    this.minPartSize = inner.minPartSize;
    const blobUrl = inner.blobUrl?.bind(inner);
    if (blobUrl) this.blobUrl = (digest, expires) => this.call('blobUrl', digestKey(digest), () => blobUrl(digest, expires));
  }

  statBlob(digest: string): Promise<BlobStat | null> {
    return this.call('statBlob', digestKey(digest), () => this.inner.statBlob(digest));
  }

  readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    return this.read('readBlob', digestKey(digest), () => this.inner.readBlob(digest, range));
  }

  deleteBlob(digest: string): Promise<void> {
    return this.call('deleteBlob', digestKey(digest), () => this.inner.deleteBlob(digest));
  }

  deleteBlobs(digests: readonly string[]): Promise<void> {
    return this.call('deleteBlobs', { 'lading.storage.keys': digests.length }, () => this.inner.deleteBlobs(digests));
  }

  createUpload(id: string): Promise<void> {
    return this.call('createUpload', uploadKey(id), () => this.inner.createUpload(id));
  }

  uploadExists(id: string): Promise<boolean> {
    return this.call('uploadExists', uploadKey(id), () => this.inner.uploadExists(id));
  }

  writePart(
    id: string,
    parts: readonly UploadPart[],
    source: AsyncIterable<Buffer | Uint8Array>,
    options: WritePartOptions = {},
  ): Promise<WritePartResult> {
    let bytes = 0;
    const onData = options.onData;
    const counted: WritePartOptions = {
      ...options,
      onData: (chunk) => {
        bytes += chunk.length;
        onData?.(chunk);
      },
    };
    return this.call('writePart', uploadKey(id), () => this.inner.writePart(id, parts, source, counted), (span, r) => {
      span.setAttributes({ [StorageAttributes.bytes]: bytes, [StorageAttributes.parts]: r?.parts.length ?? parts.length });
    });
  }

  readUpload(id: string, parts: readonly UploadPart[], range?: ByteRange): Promise<Readable> {
    return this.read('readUpload', uploadKey(id), () => this.inner.readUpload(id, parts, range));
  }

  commitUpload(id: string, parts: readonly UploadPart[], digest: string): Promise<void> {
    const size = parts.reduce((n, p) => n + p.size, 0);
    const attributes = { ...uploadKey(id), ...digestKey(digest), [StorageAttributes.bytes]: size, [StorageAttributes.parts]: parts.length };
    return this.call('commitUpload', attributes, () => this.inner.commitUpload(id, parts, digest));
  }

  deleteParts(id: string, parts: readonly UploadPart[]): Promise<void> {
    return this.call('deleteParts', { ...uploadKey(id), [StorageAttributes.parts]: parts.length }, () => this.inner.deleteParts(id, parts));
  }

  deleteUpload(id: string): Promise<void> {
    return this.call('deleteUpload', uploadKey(id), () => this.inner.deleteUpload(id));
  }

  listBlobs(): AsyncIterable<string> {
    return this.inner.listBlobs();
  }

  listBlobInfo(): AsyncIterable<BlobInfo> {
    return this.inner.listBlobInfo();
  }

  currentTime(): Promise<Date> {
    return this.call('currentTime', {}, () => this.inner.currentTime());
  }

  listUploads(): AsyncIterable<UploadInfo> {
    return this.inner.listUploads();
  }

  /** Times `run` as `action`, in a span when tracing; `done` adds what the outcome tells. */
  private async call<T>(action: string, attributes: Attributes, run: () => Promise<T>, done?: (span: Span, result?: T) => void): Promise<T> {
    const stop = this.seconds.startTimer({ driver: this.driverName, action });
    const span = this.startSpan(action, attributes);
    try {
      const result = await this.inside(span, run);
      if (span) done?.(span, result);
      return result;
    } catch (e) {
      if (span) {
        done?.(span);
        failSpan(span, e);
      }
      throw e;
    } finally {
      stop();
      span?.end();
    }
  }

  /** Times a read from the call until its stream closes; counts its bytes when tracing. */
  private async read(action: string, attributes: Attributes, open: () => Promise<Readable>): Promise<Readable> {
    const stop = this.seconds.startTimer({ driver: this.driverName, action });
    const span = this.startSpan(action, attributes);
    let stream: Readable;
    try {
      stream = await this.inside(span, open);
    } catch (e) {
      stop();
      if (span) {
        failSpan(span, e);
        span.end();
      }
      throw e;
    }
    let bytes = 0;
    if (span) {
      // Every byte a Readable yields goes through its push(); counting there leaves its flow alone.
      const push = stream.push.bind(stream);
      stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (chunk !== null && chunk !== undefined) bytes += (chunk as Buffer).length;
        return push(chunk, encoding);
      };
      stream.once('error', (e) => failSpan(span, e));
      // A stream sent with sendTo pushes nothing and emits no error: count and fail it there.
      if (isSendableBlobStream(stream)) {
        const sendTo = stream.sendTo.bind(stream);
        stream.sendTo = (target, onChunk) =>
          sendTo(target, (n) => {
            bytes += n;
            onChunk?.(n);
          }).catch((e: unknown) => {
            failSpan(span, e);
            throw e;
          });
      }
    }
    stream.once('close', () => {
      stop();
      span?.setAttribute(StorageAttributes.bytes, bytes);
      span?.end();
    });
    return stream;
  }

  /** Runs `fn` with `span` active, so the driver's own calls (S3's HTTP requests) are its children. */
  private inside<T>(span: Span | undefined, fn: () => Promise<T>): Promise<T> {
    return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
  }

  private startSpan(action: string, attributes: Attributes): Span | undefined {
    if (untraced()) return undefined;
    return tracer().startSpan(`storage.${action}`, {
      kind: SpanKind.CLIENT,
      attributes: { [StorageAttributes.driver]: this.driverName, ...attributes },
    });
  }
}

function digestKey(digest: string): Attributes {
  return { [OciAttributes.digest]: digest };
}

function uploadKey(id: string): Attributes {
  return { [OciAttributes.uploadSession]: id };
}
