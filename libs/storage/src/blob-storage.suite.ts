import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { BlobStorage } from './blob-storage.port';
import {
  BlobNotFoundError,
  InvalidStorageKeyError,
  RangeNotSatisfiableError,
  UploadNotFoundError,
  UploadOffsetMismatchError,
} from './storage.error';

/** A driver under test and how to dispose of it (remove its directory, bucket…). */
export interface BlobStorageFixture {
  /** A fresh, empty storage. */
  storage: BlobStorage;
  /** Releases everything the fixture made; called after each test. */
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * The conformance suite of the `BlobStorage` port: registers, with Jest's globals, one
 * `describe` block of tests that every driver must pass. `factory` is called before each test
 * and must return an empty storage; its `cleanup` runs after each test. Call it from a driver's
 * spec (unit tier) or integration test (S3 against MinIO).
 */
export function describeBlobStorageDriver(name: string, factory: () => Promise<BlobStorageFixture>): void {
  describe(`BlobStorage conformance: ${name}`, () => {
    let fixture: BlobStorageFixture | undefined;
    let storage: BlobStorage;

    beforeEach(async () => {
      fixture = await factory();
      storage = fixture.storage;
    });

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    /** Creates an upload holding `content` and returns its id. */
    async function uploadOf(content: Buffer): Promise<string> {
      const id = randomUUID();
      await storage.createUpload(id);
      await storage.appendUpload(id, 0, chunksOf(content));
      return id;
    }

    /** Commits `content` as a blob and returns its digest. */
    async function blobOf(content: Buffer): Promise<string> {
      const digest = sha256(content);
      await storage.commitUpload(await uploadOf(content), digest);
      return digest;
    }

    describe('upload then blob lifecycle', () => {
      it('creates an empty upload, appends in several calls, reads it, commits it as a blob', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        expect(await storage.uploadSize(id)).toBe(0);

        expect(await storage.appendUpload(id, 0, chunksOf(Buffer.from('hello, ')))).toBe(7);
        expect(await storage.appendUpload(id, 7, chunksOf(Buffer.from('world'), 2))).toBe(12);
        expect(await storage.uploadSize(id)).toBe(12);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('hello, world');

        const digest = sha256(Buffer.from('hello, world'));
        await storage.commitUpload(id, digest);

        expect(await storage.uploadSize(id)).toBeNull();
        expect(await storage.statBlob(digest)).toEqual({ size: 12 });
        expect((await readAll(await storage.readBlob(digest))).toString()).toBe('hello, world');
      });

      it('calls onData with every chunk, in order, as it appends', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        const seen: Buffer[] = [];
        const content = randomBytes(1000);
        await storage.appendUpload(id, 0, chunksOf(content, 100), { onData: (chunk) => seen.push(Buffer.from(chunk)) });
        expect(Buffer.concat(seen).equals(content)).toBe(true);
      });

      it('accepts Uint8Array chunks and an empty source', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        expect(await storage.appendUpload(id, 0, fromChunks([new Uint8Array([1, 2, 3])]))).toBe(3);
        expect(await storage.appendUpload(id, 3, fromChunks([]))).toBe(3);
        expect([...(await readAll(await storage.readUpload(id)))]).toEqual([1, 2, 3]);
      });

      it('commits an empty upload as an empty blob', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        const digest = sha256(Buffer.alloc(0));
        await storage.commitUpload(id, digest);
        expect(await storage.statBlob(digest)).toEqual({ size: 0 });
        expect((await readAll(await storage.readBlob(digest))).length).toBe(0);
      });

      it('leaves an existing upload untouched when createUpload is repeated', async () => {
        const id = await uploadOf(Buffer.from('abc'));
        await storage.createUpload(id);
        expect(await storage.uploadSize(id)).toBe(3);
      });

      it('stores sha512 blobs as well', async () => {
        const content = Buffer.from('sha512 content');
        const digest = `sha512:${createHash('sha512').update(content).digest('hex')}`;
        await storage.commitUpload(await uploadOf(content), digest);
        expect(await storage.statBlob(digest)).toEqual({ size: content.length });
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
      });

      it('deletes a blob, idempotently', async () => {
        const digest = await blobOf(Buffer.from('doomed'));
        await storage.deleteBlob(digest);
        expect(await storage.statBlob(digest)).toBeNull();
        await expect(storage.readBlob(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
        await storage.deleteBlob(digest);
      });

      it('lets a blob be committed again after it was deleted', async () => {
        const content = Buffer.from('phoenix');
        const digest = await blobOf(content);
        await storage.deleteBlob(digest);
        await storage.commitUpload(await uploadOf(content), digest);
        expect(await storage.statBlob(digest)).toEqual({ size: content.length });
      });
    });

    describe('ranged reads', () => {
      const content = Buffer.from('0123456789');
      let digest: string;

      beforeEach(async () => {
        digest = await blobOf(content);
      });

      it.each([
        [{ start: 0, end: 0 }, '0'],
        [{ start: 2, end: 5 }, '2345'],
        [{ start: 9, end: 9 }, '9'],
        [{ start: 0, end: 9 }, '0123456789'],
        [{ start: 7, end: 100 }, '789'],
        [{ start: 0, end: Number.MAX_SAFE_INTEGER }, '0123456789'],
      ])('reads %o of a blob as %s (end clamped to the last byte)', async (range, expected) => {
        expect((await readAll(await storage.readBlob(digest, range))).toString()).toBe(expected);
      });

      it.each([
        { start: 10, end: 12 },
        { start: 5, end: 4 },
        { start: -1, end: 3 },
        { start: 1.5, end: 3 },
        { start: 0, end: Number.NaN },
      ])('rejects %o with RangeNotSatisfiableError', async (range) => {
        const error = await storage.readBlob(digest, range).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RangeNotSatisfiableError);
        expect((error as RangeNotSatisfiableError).size).toBe(10);
      });

      it('rejects any range of an empty blob', async () => {
        const empty = await blobOf(Buffer.alloc(0));
        await expect(storage.readBlob(empty, { start: 0, end: 0 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
      });

      it('reads a range of an upload', async () => {
        const id = await uploadOf(content);
        expect((await readAll(await storage.readUpload(id, { start: 3, end: 6 }))).toString()).toBe('3456');
        await expect(storage.readUpload(id, { start: 10, end: 10 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
      });

      it('reads ranges that cross the boundaries of appended chunks', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        await storage.appendUpload(id, 0, chunksOf(content, 3));
        const blob = sha256(content);
        await storage.commitUpload(id, blob);
        expect((await readAll(await storage.readBlob(blob, { start: 2, end: 7 }))).toString()).toBe('234567');
      });
    });

    describe('offsets', () => {
      it.each([
        [0, 5],
        [3, 5],
        [6, 5],
      ])(
        'rejects an append at offset %i to an upload of %i bytes, reporting the size and writing nothing',
        async (offset, size) => {
          const id = await uploadOf(Buffer.from('12345'));
          const error = await storage.appendUpload(id, offset, chunksOf(Buffer.from('x'))).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UploadOffsetMismatchError);
          expect(error).toMatchObject({ uploadId: id, offset, currentSize: size });
          expect(await storage.uploadSize(id)).toBe(size);
        },
      );

      it('serialises concurrent appends: the second one sees the first one’s size', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        const results = await Promise.allSettled([
          storage.appendUpload(id, 0, chunksOf(Buffer.from('aaaa'), 1)),
          storage.appendUpload(id, 0, chunksOf(Buffer.from('bbbb'), 1)),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(
          results.filter((r) => r.status === 'rejected' && r.reason instanceof UploadOffsetMismatchError),
        ).toHaveLength(1);
        expect(await storage.uploadSize(id)).toBe(4);
      });
    });

    describe('failed appends leave nothing partial', () => {
      async function expectRolledBack(id: string, content: string): Promise<void> {
        expect(await storage.uploadSize(id)).toBe(content.length);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe(content);
        expect(await storage.appendUpload(id, content.length, chunksOf(Buffer.from('!')))).toBe(content.length + 1);
      }

      it('truncates back to the offset and rethrows when the source throws part way', async () => {
        const id = await uploadOf(Buffer.from('kept'));
        const failure = new Error('client sent fewer bytes than Content-Length');
        async function* failing(): AsyncGenerator<Buffer> {
          yield Buffer.from('partial-1');
          yield Buffer.from('partial-2');
          throw failure;
        }
        const seen: string[] = [];
        await expect(storage.appendUpload(id, 4, failing(), { onData: (c) => seen.push(c.toString()) })).rejects.toBe(
          failure,
        );
        expect(seen).toEqual(['partial-1', 'partial-2']);
        await expectRolledBack(id, 'kept');
      });

      it('truncates back when a stream source is destroyed (connection dropped)', async () => {
        const id = await uploadOf(Buffer.from('kept'));
        const request = new PassThrough();
        request.write(Buffer.alloc(4096, 1));
        setTimeout(() => request.destroy(new Error('socket hang up')), 20);
        await expect(storage.appendUpload(id, 4, request)).rejects.toThrow('socket hang up');
        await expectRolledBack(id, 'kept');
      });

      it('truncates back and rejects with the reason when aborted while the source stalls', async () => {
        const id = await uploadOf(Buffer.from('kept'));
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        async function* stalling(): AsyncGenerator<Buffer> {
          yield Buffer.from('some bytes');
          await released;
        }
        const controller = new AbortController();
        const reason = new Error('client went away');
        const append = storage.appendUpload(id, 4, stalling(), {
          signal: controller.signal,
          onData: () => setTimeout(() => controller.abort(reason), 10),
        });
        try {
          await expect(append).rejects.toBe(reason);
        } finally {
          release();
        }
        await expectRolledBack(id, 'kept');
      });

      it('rejects at once, writing nothing, when the signal is already aborted', async () => {
        const id = await uploadOf(Buffer.from('kept'));
        const reason = new Error('already gone');
        await expect(
          storage.appendUpload(id, 4, chunksOf(Buffer.from('xyz')), { signal: AbortSignal.abort(reason) }),
        ).rejects.toBe(reason);
        await expectRolledBack(id, 'kept');
      });

      it('truncates back and rethrows when onData throws', async () => {
        const id = await uploadOf(Buffer.from('kept'));
        const tooBig = new Error('upload exceeds the size limit');
        let calls = 0;
        const append = storage.appendUpload(id, 4, chunksOf(Buffer.from('0123456789'), 2), {
          onData: () => {
            if (++calls === 3) throw tooBig;
          },
        });
        await expect(append).rejects.toBe(tooBig);
        await expectRolledBack(id, 'kept');
      });
    });

    describe('truncating an upload', () => {
      it('cuts a tail back to the given size, after which appends continue there', async () => {
        const id = await uploadOf(Buffer.from('committed+stray tail'));
        expect(await storage.truncateUpload(id, 9)).toBe(9);
        expect(await storage.uploadSize(id)).toBe(9);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('committed');
        expect(await storage.appendUpload(id, 9, chunksOf(Buffer.from('!more'), 2))).toBe(14);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('committed!more');
      });

      it('cuts inside an appended chunk and back to empty', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        await storage.appendUpload(id, 0, chunksOf(Buffer.from('abcdefgh'), 3));
        await storage.truncateUpload(id, 4);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('abcd');
        await storage.truncateUpload(id, 0);
        expect(await storage.uploadSize(id)).toBe(0);
        expect(await storage.appendUpload(id, 0, chunksOf(Buffer.from('xy')))).toBe(2);
      });

      it('does not disturb a reader of the kept bytes that opened the upload before the cut', async () => {
        const id = await uploadOf(Buffer.from('0123456789'));
        const before = await storage.readUpload(id, { start: 0, end: 3 });
        await storage.truncateUpload(id, 6);
        expect((await readAll(before)).toString()).toBe('0123');
      });

      it('is a no-op at the current size and refuses to grow the upload', async () => {
        const id = await uploadOf(Buffer.from('12345'));
        expect(await storage.truncateUpload(id, 5)).toBe(5);
        const error = await storage.truncateUpload(id, 6).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UploadOffsetMismatchError);
        expect(error).toMatchObject({ uploadId: id, offset: 6, currentSize: 5 });
        expect(await storage.uploadSize(id)).toBe(5);
        await expect(storage.truncateUpload(id, -1)).rejects.toBeInstanceOf(RangeError);
        await expect(storage.truncateUpload(id, 1.5)).rejects.toBeInstanceOf(RangeError);
        expect(await storage.uploadSize(id)).toBe(5);
      });

      it('with unchangedFor, leaves a tail written more recently than that alone', async () => {
        const id = await uploadOf(Buffer.from('kept+tail'));
        expect(await storage.truncateUpload(id, 4, { unchangedFor: 60_000 })).toBe(9);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('kept+tail');
      });

      it('with unchangedFor, cuts a tail that has not changed for that long', async () => {
        const id = await uploadOf(Buffer.from('kept+tail'));
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(await storage.truncateUpload(id, 4, { unchangedFor: 20 })).toBe(4);
        expect((await readAll(await storage.readUpload(id))).toString()).toBe('kept');
        // A new append is a change: right after it, its tail is left alone again.
        await storage.appendUpload(id, 4, chunksOf(Buffer.from('+more')));
        expect(await storage.truncateUpload(id, 4, { unchangedFor: 60_000 })).toBe(9);
      });

      it('reports an unknown or committed upload as not found', async () => {
        await expect(storage.truncateUpload(randomUUID(), 0)).rejects.toBeInstanceOf(UploadNotFoundError);
        const id = await uploadOf(Buffer.from('once'));
        await storage.commitUpload(id, sha256(Buffer.from('once')));
        await expect(storage.truncateUpload(id, 0)).rejects.toBeInstanceOf(UploadNotFoundError);
      });
    });

    describe('commits', () => {
      it('discards the upload when the blob exists already, keeping the blob', async () => {
        const content = Buffer.from('same bytes');
        const digest = await blobOf(content);
        const second = await uploadOf(content);
        await storage.commitUpload(second, digest);
        expect(await storage.uploadSize(second)).toBeNull();
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
        expect(await collect(storage.listBlobs())).toEqual([digest]);
      });

      it('resolves 16 concurrent commits of the same content from 16 uploads, leaving one blob', async () => {
        const content = randomBytes(256 * 1024);
        const digest = sha256(content);
        const ids = await Promise.all(Array.from({ length: 16 }, () => uploadOf(content)));
        await Promise.all(ids.map((id) => storage.commitUpload(id, digest)));
        expect(await collect(storage.listBlobs())).toEqual([digest]);
        expect(await collect(storage.listUploads())).toEqual([]);
        expect(await storage.statBlob(digest)).toEqual({ size: content.length });
        expect(sha256(await readAll(await storage.readBlob(digest)))).toBe(digest);
      });

      it('keeps a blob readable by a reader that opened it before it was deleted', async () => {
        const content = randomBytes(64 * 1024);
        const digest = await blobOf(content);
        const stream = await storage.readBlob(digest);
        await storage.deleteBlob(digest);
        expect((await readAll(stream)).equals(content)).toBe(true);
      });
    });

    describe('listing', () => {
      it('lists nothing in an empty storage', async () => {
        expect(await collect(storage.listBlobs())).toEqual([]);
        expect(await collect(storage.listUploads())).toEqual([]);
      });

      it('lists every committed blob, and no deleted one', async () => {
        const digests = await Promise.all(['a', 'b', 'c'].map((s) => blobOf(Buffer.from(s))));
        await storage.deleteBlob(digests[1]);
        expect((await collect(storage.listBlobs())).sort()).toEqual([digests[0], digests[2]].sort());
      });

      it('lists uploads in progress with their sizes and times', async () => {
        const before = Date.now() - 2000;
        const empty = randomUUID();
        await storage.createUpload(empty);
        const filled = await uploadOf(Buffer.from('12345'));
        const committed = await uploadOf(Buffer.from('gone'));
        await storage.commitUpload(committed, sha256(Buffer.from('gone')));
        const deleted = await uploadOf(Buffer.from('gone too'));
        await storage.deleteUpload(deleted);

        const uploads = await collect(storage.listUploads());
        const byId = new Map(uploads.map((u) => [u.id, u]));
        expect([...byId.keys()].sort()).toEqual([empty, filled].sort());
        expect(byId.get(empty)?.size).toBe(0);
        expect(byId.get(filled)?.size).toBe(5);
        for (const upload of uploads) {
          expect(upload.startedAt).toBeInstanceOf(Date);
          expect(upload.startedAt.getTime()).toBeGreaterThan(before);
        }
      });
    });

    describe('unknown keys', () => {
      const digest = sha256(Buffer.from('never stored'));

      it('reports an unknown blob as absent or not found', async () => {
        expect(await storage.statBlob(digest)).toBeNull();
        const error = await storage.readBlob(digest).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobNotFoundError);
        expect(error).toMatchObject({ digest });
        await storage.deleteBlob(digest);
      });

      it('reports an unknown upload as absent or not found', async () => {
        const id = randomUUID();
        expect(await storage.uploadSize(id)).toBeNull();
        await expect(storage.appendUpload(id, 0, chunksOf(Buffer.from('x')))).rejects.toBeInstanceOf(
          UploadNotFoundError,
        );
        await expect(storage.readUpload(id)).rejects.toBeInstanceOf(UploadNotFoundError);
        const error = await storage.commitUpload(id, digest).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UploadNotFoundError);
        expect(error).toMatchObject({ uploadId: id });
        expect(await storage.statBlob(digest)).toBeNull();
      });

      it('deletes uploads idempotently', async () => {
        const id = await uploadOf(Buffer.from('abc'));
        await storage.deleteUpload(id);
        expect(await storage.uploadSize(id)).toBeNull();
        await storage.deleteUpload(id);
        await storage.deleteUpload(randomUUID());
      });

      it('reports a committed upload as not found', async () => {
        const id = await uploadOf(Buffer.from('once'));
        await storage.commitUpload(id, sha256(Buffer.from('once')));
        await expect(storage.commitUpload(id, sha256(Buffer.from('once')))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(storage.appendUpload(id, 4, chunksOf(Buffer.from('x')))).rejects.toBeInstanceOf(
          UploadNotFoundError,
        );
      });
    });

    describe('invalid keys', () => {
      const validDigest = sha256(Buffer.from('valid'));
      const validId = randomUUID();
      const badDigests = [
        '../etc',
        '../../etc/passwd',
        'sha256:XYZ',
        `sha256:${'A'.repeat(64)}`,
        `sha256:${'a'.repeat(63)}`,
        `sha256:${'a'.repeat(65)}`,
        `sha512:${'a'.repeat(64)}`,
        `md5:${'a'.repeat(32)}`,
        `sha256:${'a'.repeat(62)}/.`,
        `sha256:${'a'.repeat(64)}\n`,
        'a'.repeat(64),
        '',
      ];
      const badIds = [
        '../etc',
        '..',
        '',
        'not-a-uuid',
        validId.toUpperCase(),
        `${validId}/../x`,
        `${validId}\0`,
        validId.replace(/-/g, ''),
      ];

      it.each(badDigests)('rejects digest %j in every blob operation', async (bad) => {
        await expect(storage.statBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.readBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.deleteBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        const id = await uploadOf(Buffer.from('x'));
        const error = await storage.commitUpload(id, bad).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidStorageKeyError);
        expect(error).toMatchObject({ kind: 'digest', key: bad });
        expect(await storage.uploadSize(id)).toBe(1);
      });

      it.each(badIds)('rejects upload id %j in every upload operation', async (bad) => {
        await expect(storage.createUpload(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.uploadSize(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.appendUpload(bad, 0, chunksOf(Buffer.from('x')))).rejects.toBeInstanceOf(
          InvalidStorageKeyError,
        );
        await expect(storage.readUpload(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.truncateUpload(bad, 0)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.commitUpload(bad, validDigest)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        const error = await storage.deleteUpload(bad).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidStorageKeyError);
        expect(error).toMatchObject({ kind: 'uploadId', key: bad });
        expect(await collect(storage.listUploads())).toEqual([]);
      });
    });

    describe('large blobs stream', () => {
      it('appends 64 MiB generated lazily with bounded lookahead and reads it back by the right digest', async () => {
        const chunkSize = MiB;
        const chunkCount = 64;
        const expected = createHash('sha256');
        let consumed = 0;
        let maxLookahead = 0;
        async function* generate(): AsyncGenerator<Buffer> {
          for (let i = 0; i < chunkCount; i++) {
            // A driver that collected the source before writing would run far ahead of onData.
            maxLookahead = Math.max(maxLookahead, (i - consumed) * chunkSize);
            const chunk = randomBytes(chunkSize);
            expected.update(chunk);
            yield chunk;
          }
        }
        const id = randomUUID();
        await storage.createUpload(id);
        const hashedInPass = createHash('sha256');
        const size = await storage.appendUpload(id, 0, generate(), {
          onData: (chunk) => {
            consumed += chunk.length / chunkSize;
            hashedInPass.update(chunk);
          },
        });
        const digest = `sha256:${expected.digest('hex')}`;
        expect(size).toBe(chunkSize * chunkCount);
        expect(maxLookahead).toBeLessThanOrEqual(16 * MiB);
        expect(`sha256:${hashedInPass.digest('hex')}`).toBe(digest);

        await storage.commitUpload(id, digest);
        expect(await storage.statBlob(digest)).toEqual({ size: chunkSize * chunkCount });

        const readBack = createHash('sha256');
        let largestChunk = 0;
        for await (const chunk of await storage.readBlob(digest)) {
          largestChunk = Math.max(largestChunk, (chunk as Buffer).length);
          readBack.update(chunk as Buffer);
        }
        expect(`sha256:${readBack.digest('hex')}`).toBe(digest);
        expect(largestChunk).toBeLessThanOrEqual(16 * MiB);
      }, 120_000);
    });
  });
}

function sha256(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** An async source yielding `content` in chunks of `size` bytes, as a request body would. */
async function* chunksOf(content: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < content.length; i += size) {
    yield content.subarray(i, i + size);
  }
}

async function* fromChunks(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) {
    out.push(item);
  }
  return out;
}
