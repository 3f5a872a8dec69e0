import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { ByteRange, SendableBlobStream, UploadPart } from './blob-storage.port';
import { isSendableBlobStream, sendBlob } from './blob-storage.support';
import { FilesystemBlobStorage } from './filesystem.driver';

async function temporaryRoot(): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'lading-storage-'));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

describe('FilesystemBlobStorage', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let storage: FilesystemBlobStorage;

  beforeEach(async () => {
    ({ root, cleanup } = await temporaryRoot());
    storage = new FilesystemBlobStorage({ rootDirectory: root });
  });

  afterEach(() => cleanup());

  const content = Buffer.from('layout');
  const hex = createHash('sha256').update(content).digest('hex');
  const digest = `sha256:${hex}`;

  async function* body(bytes: Buffer): AsyncGenerator<Buffer> {
    yield bytes;
  }

  async function uploadOf(...contents: Buffer[]): Promise<{ id: string; parts: UploadPart[] }> {
    const id = randomUUID();
    await storage.createUpload(id);
    let parts: UploadPart[] = [];
    for (const bytes of contents) parts = (await storage.writePart(id, parts, body(bytes))).parts;
    return { id, parts };
  }

  async function commit(upload: Promise<{ id: string; parts: UploadPart[] }>, on = storage): Promise<void> {
    const { id, parts } = await upload;
    await on.commitUpload(id, parts, digest);
  }

  async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of items) out.push(item);
    return out;
  }

  it('flushes a large part while it is written, and fails the write when an early flush failed (the closing one would not know)', async () => {
    const { open } = await import('node:fs/promises');
    const probe = await open(join(root, 'probe'), 'w');
    const FileHandle = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const real = FileHandle.datasync;
    let calls = 0;
    let failFirst = false;
    const spy = jest.spyOn(FileHandle, 'datasync').mockImplementation(function (this: unknown) {
      calls++;
      if (failFirst && calls === 1) return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      return real.call(this);
    });
    try {
      const chunk = Buffer.alloc(4 * 1024 * 1024, 7);
      async function* big(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 20; i++) yield chunk; // 80 MiB
      }
      const id = randomUUID();
      await storage.createUpload(id);
      await storage.writePart(id, [], big());
      // One started at 32 MiB (none in flight then), one closing; one at 64 MiB only if the first was done.
      expect(calls).toBeGreaterThanOrEqual(2);

      calls = 0;
      failFirst = true;
      const other = randomUUID();
      await storage.createUpload(other);
      await expect(storage.writePart(other, [], big())).rejects.toMatchObject({ code: 'EIO' });
      expect(await readdir(join(root, 'uploads', other))).not.toContainEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    } finally {
      spy.mockRestore();
    }
  });

  it('is named like the reference registry’s filesystem driver', () => {
    expect(storage.driverName).toBe('filesystem');
  });

  it('keeps uploads under uploads/<id>/ (marker, immutable parts) and blobs under blobs/<alg>/<first two hex>/<hex>/data', async () => {
    const { id, parts } = await uploadOf(content.subarray(0, 3), content.subarray(3));
    expect((await readdir(join(root, 'uploads', id))).sort()).toEqual(['parts', 'startedat']);
    expect((await readdir(join(root, 'uploads', id, 'parts'))).sort()).toEqual(parts.map((p) => p.name).sort());
    expect(await readFile(join(root, 'uploads', id, 'parts', parts[0].name))).toEqual(content.subarray(0, 3));
    expect(Number.isNaN(Date.parse(await readFile(join(root, 'uploads', id, 'startedat'), 'utf8')))).toBe(false);

    await storage.commitUpload(id, parts, digest);

    expect(await readFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'))).toEqual(content);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it('removes the blob directory on delete', async () => {
    await commit(uploadOf(content));
    await storage.deleteBlob(digest);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([]);
  });

  it('removes the blob directories on a batch delete', async () => {
    await commit(uploadOf(content));
    await storage.deleteBlobs([digest]);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([]);
  });

  it('creates nothing outside the root for a traversal attempt', async () => {
    await expect(storage.createUpload('../escaped')).rejects.toThrow('invalid upload id');
    await expect(stat(join(root, '..', 'escaped'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lists an upload whose creation was cut short (no marker) so it can be purged', async () => {
    const id = randomUUID();
    await mkdir(join(root, 'uploads', id), { recursive: true });
    expect(await storage.uploadExists(id)).toBe(false);
    expect(await collect(storage.listUploads())).toEqual([{ id, startedAt: null }]);
    await storage.deleteUpload(id);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('ignores stray entries when listing', async () => {
    await commit(uploadOf(content));
    await mkdir(join(root, 'uploads', 'not-an-upload'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', 'zz', 'nothex'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256', '00', '00'.padEnd(64, '1')), { recursive: true });
    await mkdir(join(root, 'blobs', 'md5', 'ab'), { recursive: true });
    await writeFile(join(root, 'blobs', 'sha256', 'file'), '');
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await collect(storage.listUploads())).toEqual([]);
  });

  it('refuses to commit a part whose file does not hold its recorded size (damaged or foreign)', async () => {
    const { id, parts } = await uploadOf(content);
    await writeFile(join(root, 'uploads', id, 'parts', parts[0].name), 'lay');
    await expect(storage.commitUpload(id, parts, digest)).rejects.toMatchObject({ ociCode: 'BLOB_UPLOAD_UNKNOWN' });
    expect(await storage.statBlob(digest)).toBeNull();
  });

  it('replaces a damaged blob (wrong size) when the same digest is committed again', async () => {
    await commit(uploadOf(content));
    await writeFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), 'lay');
    await commit(uploadOf(content));
    expect(await storage.statBlob(digest)).toEqual({ size: content.length });
  });

  it('leaves one blob when instances sharing a root (separate processes) commit the same digest at once', async () => {
    const others = Array.from({ length: 8 }, () => new FilesystemBlobStorage({ rootDirectory: root }));
    const uploads = await Promise.all(others.map(() => uploadOf(content)));
    await Promise.all(others.map((other, i) => other.commitUpload(uploads[i].id, uploads[i].parts, digest)));
    expect(await collect(storage.listBlobs())).toEqual([digest]);
    expect(await readdir(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex))).toEqual(['data']);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it.each(['deleteBlob', 'deleteBlobs'] as const)('survives a commit racing a %s of the same digest', async (remove) => {
    await commit(uploadOf(content));
    const { id, parts } = await uploadOf(content);
    await Promise.all([remove === 'deleteBlob' ? storage.deleteBlob(digest) : storage.deleteBlobs([digest]), storage.commitUpload(id, parts, digest)]);
    expect(await storage.uploadExists(id)).toBe(false);
  });

  describe('sending a blob (sendTo)', () => {
    const MiB = 1024 * 1024;

    async function store(bytes: Buffer): Promise<string> {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const id = randomUUID();
      await storage.createUpload(id);
      const { parts } = await storage.writePart(id, [], Readable.from([bytes]));
      await storage.commitUpload(id, parts, digest);
      return digest;
    }

    async function open(digest: string, range?: ByteRange): Promise<SendableBlobStream> {
      const stream = await storage.readBlob(digest, range);
      if (!isSendableBlobStream(stream)) throw new Error('the filesystem driver should return a sendable stream');
      return stream;
    }

    function dataPath(digest: string): string {
      const hex = digest.slice('sha256:'.length);
      return join(root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    }

    /** How many of this process's descriptors have `path` open (Linux). */
    async function descriptorsOf(path: string): Promise<number> {
      let n = 0;
      for (const fd of await readdir('/proc/self/fd')) {
        const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
        if (target === path) n++;
      }
      return n;
    }

    async function closed(stream: Readable): Promise<void> {
      if (!stream.closed) await once(stream, 'close');
    }

    /**
     * A destination that takes each chunk only after a few turns with file I/O in them (as a busy
     * socket does), copying it then: a buffer read into again before its write was done would
     * show up as wrong bytes.
     */
    function slowSink(): { sink: Writable; bytes: () => Buffer; buffers: Set<ArrayBufferLike>; chunks: () => number } {
      const got: Buffer[] = [];
      const buffers = new Set<ArrayBufferLike>();
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          buffers.add(chunk.buffer);
          void (async () => {
            for (let i = 0; i < 3; i++) await stat(root);
            got.push(Buffer.from(chunk));
            callback();
          })();
        },
      });
      return { sink, bytes: () => Buffer.concat(got), buffers, chunks: () => got.length };
    }

    it('sends every byte in order through at most 8 buffers, reusing each only after its write is done, and closes the file', async () => {
      const content = randomBytes(11 * MiB + 5);
      const digest = await store(content);
      const stream = await open(digest);
      const { sink, bytes, buffers, chunks } = slowSink();
      const sizes: number[] = [];
      await stream.sendTo(sink, (n) => sizes.push(n));
      expect(bytes().equals(content)).toBe(true);
      expect(sink.writableFinished).toBe(true);
      expect(chunks()).toBe(12);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(content.length);
      expect(buffers.size).toBeLessThanOrEqual(8);
      await closed(stream);
      expect(await descriptorsOf(dataPath(digest))).toBe(0);
    });

    it('sends only the requested range, across buffer boundaries and within one', async () => {
      const content = randomBytes(3 * MiB + 100);
      const digest = await store(content);
      for (const range of [{ start: MiB - 3, end: 3 * MiB + 10 }, { start: 7, end: 7 }, { start: 3 * MiB, end: 10 * MiB }]) {
        const { sink, bytes } = slowSink();
        await (await open(digest, range)).sendTo(sink);
        expect(bytes().equals(content.subarray(range.start, range.end + 1))).toBe(true);
      }
    });

    it('stops, rejects and closes the file when the destination closes mid-transfer', async () => {
      const digest = await store(randomBytes(12 * MiB));
      const stream = await open(digest);
      let taken = 0;
      const sink = new Writable({
        write(_chunk: Buffer, _encoding, callback) {
          if (++taken === 2) this.destroy();
          else callback();
        },
      });
      await expect(stream.sendTo(sink)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
      expect(taken).toBe(2); // nothing was written after the destination went
      await closed(stream);
      expect(await descriptorsOf(dataPath(digest))).toBe(0);
    });

    it('frees the file when an HTTP client goes away in the middle of a response', async () => {
      // Far more than the socket buffers on both ends hold, so the client leaves long before the end.
      const digest = await store(Buffer.alloc(64 * MiB, 1));
      const stream = await open(digest);
      let sent: Promise<void> | undefined;
      const server = createServer((_req, res) => {
        res.writeHead(200, { 'Content-Length': 64 * MiB });
        sent = stream.sendTo(res);
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      try {
        const { port } = server.address() as AddressInfo;
        await new Promise<void>((ok, fail) => {
          const req = request({ host: '127.0.0.1', port, path: '/' }, (res) => {
            res.once('data', () => {
              req.destroy();
              ok();
            });
          });
          req.once('error', (e) => (req.destroyed ? undefined : fail(e)));
          req.end();
        });
        await expect(sent).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
        await closed(stream);
        expect(await descriptorsOf(dataPath(digest))).toBe(0);
      } finally {
        server.closeAllConnections();
        await new Promise((ok) => server.close(ok));
      }
    });

    it('fails the transfer and destroys the destination when the file turns out shorter than it was when opened', async () => {
      const digest = await store(randomBytes(2 * MiB));
      const stream = await open(digest);
      await truncate(dataPath(digest), MiB + 1);
      const { sink } = slowSink();
      await expect(stream.sendTo(sink)).rejects.toThrow(/ended at byte/);
      expect(sink.destroyed).toBe(true);
      await closed(stream);
      expect(await descriptorsOf(dataPath(digest))).toBe(0);
    });

    it('refuses to send a stream that was read already', async () => {
      const digest = await store(randomBytes(10));
      const stream = await open(digest);
      stream.read();
      await once(stream, 'readable');
      await expect(stream.sendTo(slowSink().sink)).rejects.toThrow(/read already/);
      stream.destroy();
    });

    it('is sent with sendTo by sendBlob, and a plain stream (another driver) is piped', async () => {
      const content = randomBytes(100);
      const digest = await store(content);
      const stream = await open(digest);
      const sendTo = jest.spyOn(stream, 'sendTo');
      const fast = slowSink();
      await sendBlob(stream, fast.sink);
      expect(sendTo).toHaveBeenCalledTimes(1);
      expect(fast.bytes().equals(content)).toBe(true);
      const plain = slowSink();
      await sendBlob(Readable.from([content.subarray(0, 50), content.subarray(50)]), plain.sink);
      expect(plain.bytes().equals(content)).toBe(true);
    });
  });
});
