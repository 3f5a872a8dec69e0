import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import {
  BlobNotFoundError,
  InvalidStorageKeyError,
  RangeNotSatisfiableError,
  UploadNotFoundError,
  blobDataKey,
  uploadStartedAtKey,
  type BlobStorage,
  type UploadPart,
} from '@lading/storage';

/** A driver under test and how to inspect and dispose of it. */
export interface BlobStorageFixture {
  /** A fresh, empty storage. */
  storage: BlobStorage;
  /**
   * Every key stored, relative to the storage root and sorted, plus, for S3, one
   * `multipart:<key>` entry per unfinished multipart upload: what the teardown rule checks.
   */
  leftovers(): Promise<string[]>;
  /** Releases everything the fixture made (directory, objects); runs after each test. */
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * The conformance suite of the `BlobStorage` port: registers, with Jest's globals, one
 * `describe` block of tests that every driver must pass. `factory` is called before each test
 * and must return an empty storage.
 *
 * Teardown rule (as in the reference registry's driver suite): after each test the suite
 * deletes every blob and upload through the port (listing them, the one use of listings) and
 * fails if anything at all is left in storage: a stray part, an upload marker, an unfinished
 * multipart upload. So a driver whose deletes miss something fails here, not in production.
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
      if (!fixture) return;
      try {
        for (const digest of await collect(storage.listBlobs())) await storage.deleteBlob(digest);
        for (const upload of await collect(storage.listUploads())) await storage.deleteUpload(upload.id);
        expect(await fixture.leftovers()).toEqual([]);
      } finally {
        await fixture.cleanup();
        fixture = undefined;
      }
    });

    /** Writes `contents` as parts of a new upload (each a write) and returns its id and parts. */
    async function uploadOf(...contents: Buffer[]): Promise<{ id: string; parts: UploadPart[] }> {
      const id = randomUUID();
      await storage.createUpload(id);
      let parts: UploadPart[] = [];
      for (const content of contents) parts = await write(id, parts, content);
      return { id, parts };
    }

    /** One write after `parts`, deleting what it superseded (as a caller does once it recorded the list). */
    async function write(id: string, parts: UploadPart[], content: Buffer, chunk?: number): Promise<UploadPart[]> {
      const result = await storage.writePart(id, parts, chunksOf(content, chunk));
      await storage.deleteParts(id, result.superseded);
      return result.parts;
    }

    /** Commits `content` as a blob and returns its digest. */
    async function blobOf(content: Buffer): Promise<string> {
      const digest = sha256(content);
      const { id, parts } = await uploadOf(content);
      await storage.commitUpload(id, parts, digest);
      return digest;
    }

    describe('upload then blob lifecycle', () => {
      it('creates an upload, writes parts, reads them, commits them as a blob and leaves only the blob', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        expect(await storage.uploadExists(id)).toBe(true);

        const first = await storage.writePart(id, [], chunksOf(Buffer.from('hello, ')));
        expect(first.size).toBe(7);
        expect(first.superseded).toEqual([]);
        const second = await storage.writePart(id, first.parts, chunksOf(Buffer.from('world'), 2));
        expect(second.size).toBe(12);
        await storage.deleteParts(id, second.superseded);
        expect((await readAll(await storage.readUpload(id, second.parts))).toString()).toBe('hello, world');

        const digest = sha256(Buffer.from('hello, world'));
        await storage.commitUpload(id, second.parts, digest);

        expect(await storage.uploadExists(id)).toBe(false);
        expect(await storage.statBlob(digest)).toEqual({ size: 12 });
        expect((await readAll(await storage.readBlob(digest))).toString()).toBe('hello, world');
        expect(await fixture!.leftovers()).toEqual([blobDataKey(digest)]);
      });

      it('calls onData with every chunk of the source, in order', async () => {
        const { id, parts } = await uploadOf(Buffer.from('staged '));
        const seen: Buffer[] = [];
        await storage.writePart(id, parts, chunksOf(Buffer.from('abcdefghij'), 3), { onData: (chunk) => seen.push(Buffer.from(chunk)) });
        expect(seen.map((c) => c.toString())).toEqual(['abc', 'def', 'ghi', 'j']);
      });

      it('accepts Uint8Array chunks and an empty source', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        const a = await storage.writePart(id, [], fromChunks([new Uint8Array([104, 105])]));
        const b = await storage.writePart(id, a.parts, fromChunks([]));
        await storage.deleteParts(id, b.superseded);
        expect(b.size).toBe(2);
        expect((await readAll(await storage.readUpload(id, b.parts))).toString()).toBe('hi');
      });

      it('commits an upload of no parts as an empty blob', async () => {
        const id = randomUUID();
        await storage.createUpload(id);
        const digest = sha256(Buffer.alloc(0));
        await storage.commitUpload(id, [], digest);
        expect(await storage.statBlob(digest)).toEqual({ size: 0 });
        expect((await readAll(await storage.readBlob(digest))).length).toBe(0);
      });

      it('leaves an existing upload untouched when createUpload is repeated', async () => {
        const { id, parts } = await uploadOf(Buffer.from('abc'));
        await storage.createUpload(id);
        expect((await readAll(await storage.readUpload(id, parts))).toString()).toBe('abc');
      });

      it('stores sha512 blobs as well', async () => {
        const content = Buffer.from('sha512 content');
        const digest = `sha512:${createHash('sha512').update(content).digest('hex')}`;
        const { id, parts } = await uploadOf(content);
        await storage.commitUpload(id, parts, digest);
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
      });

      it('deletes a blob, idempotently', async () => {
        const digest = await blobOf(Buffer.from('to delete'));
        await storage.deleteBlob(digest);
        await storage.deleteBlob(digest);
        expect(await storage.statBlob(digest)).toBeNull();
        await expect(storage.readBlob(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      });

      it('deletes several blobs in one call; a blob that was not there counts as removed', async () => {
        const digests = await Promise.all(['one', 'two', 'three'].map((c) => blobOf(Buffer.from(c))));
        const kept = await blobOf(Buffer.from('kept'));
        const missing = `sha256:${createHash('sha256').update('never stored').digest('hex')}`;
        await storage.deleteBlobs([...digests, missing]);
        for (const d of digests) expect(await storage.statBlob(d)).toBeNull();
        expect(await collect(storage.listBlobs())).toEqual([kept]);
        await storage.deleteBlobs(digests);
      });

      it('lets a blob be committed again after it was deleted', async () => {
        const content = Buffer.from('again');
        const digest = await blobOf(content);
        await storage.deleteBlob(digest);
        await blobOf(content);
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
      });
    });

    describe('parts are immutable', () => {
      it('never changes the parts it was given: a write after the same list by a second writer stores its own part', async () => {
        const { id, parts } = await uploadOf(Buffer.from('base-'));
        const winner = await storage.writePart(id, parts, chunksOf(Buffer.from('AAAA')));
        const loser = await storage.writePart(id, parts, chunksOf(Buffer.from('BBBB')));
        expect(loser.parts.map((p) => p.name)).not.toContain(winner.parts[winner.parts.length - 1].name);
        expect((await readAll(await storage.readUpload(id, winner.parts))).toString()).toBe('base-AAAA');
        expect((await readAll(await storage.readUpload(id, loser.parts))).toString()).toBe('base-BBBB');
        // Parts a superseding write replaced stay readable until deleted.
        expect((await readAll(await storage.readUpload(id, parts))).toString()).toBe('base-');
        const digest = sha256(Buffer.from('base-AAAA'));
        await storage.commitUpload(id, winner.parts, digest);
        expect((await readAll(await storage.readBlob(digest))).toString()).toBe('base-AAAA');
        expect(await fixture!.leftovers()).toEqual([blobDataKey(digest)]);
      });

      it('stages parts smaller than minPartSize: every part but the last is at least that big', async () => {
        const chunk = Math.max(1, Math.floor(storage.minPartSize / 3)) + 1;
        const contents = Array.from({ length: 7 }, () => randomBytes(chunk));
        const { id, parts } = await uploadOf(...contents);
        for (const part of parts.slice(0, -1)) expect(part.size).toBeGreaterThanOrEqual(storage.minPartSize);
        if (storage.minPartSize === 0) expect(parts).toHaveLength(7);
        const all = Buffer.concat(contents);
        expect((await readAll(await storage.readUpload(id, parts))).equals(all)).toBe(true);
        const digest = sha256(all);
        await storage.commitUpload(id, parts, digest);
        expect(sha256(await readAll(await storage.readBlob(digest)))).toBe(digest);
        expect(await fixture!.leftovers()).toEqual([blobDataKey(digest)]);
      }, 120_000);

      it('removes parts no list records (a dead writer left them) with the upload', async () => {
        const { id, parts } = await uploadOf(Buffer.from('recorded'));
        await storage.writePart(id, parts, chunksOf(Buffer.from('never recorded')));
        await storage.deleteUpload(id);
        expect(await fixture!.leftovers()).toEqual([]);
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

      it('reads ranges of an upload that cross the boundaries of its parts', async () => {
        const { id, parts } = await uploadOf(Buffer.from('abc'), Buffer.from('defg'), Buffer.from('hij'));
        expect((await readAll(await storage.readUpload(id, parts, { start: 2, end: 7 }))).toString()).toBe('cdefgh');
        expect((await readAll(await storage.readUpload(id, parts, { start: 9, end: 50 }))).toString()).toBe('j');
        await expect(storage.readUpload(id, parts, { start: 10, end: 10 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
      });
    });

    describe('failed writes leave nothing', () => {
      /** The upload still holds exactly `content` in `parts`, and only those parts are stored. */
      async function expectUnchanged(id: string, parts: UploadPart[], content: string): Promise<void> {
        expect((await readAll(await storage.readUpload(id, parts))).toString()).toBe(content);
        const stored = (await fixture!.leftovers()).filter((k) => k.includes(`uploads/${id}/parts/`));
        expect(stored).toHaveLength(parts.length);
      }

      it('rethrows, storing no part, when the source throws part way', async () => {
        const { id, parts } = await uploadOf(Buffer.from('kept'));
        const failure = new Error('client sent fewer bytes than Content-Length');
        async function* failing(): AsyncGenerator<Buffer> {
          yield Buffer.from('partial-1');
          yield Buffer.from('partial-2');
          throw failure;
        }
        const seen: string[] = [];
        await expect(storage.writePart(id, parts, failing(), { onData: (c) => seen.push(c.toString()) })).rejects.toBe(failure);
        expect(seen).toEqual(['partial-1', 'partial-2']);
        await expectUnchanged(id, parts, 'kept');
      });

      it('rethrows, storing no part, when a stream source is destroyed (connection dropped)', async () => {
        const { id, parts } = await uploadOf(Buffer.from('kept'));
        const request = new PassThrough();
        request.write(Buffer.alloc(4096, 1));
        const write = storage.writePart(id, parts, request, { onData: () => request.destroy(new Error('socket hang up')) });
        await expect(write).rejects.toThrow('socket hang up');
        await expectUnchanged(id, parts, 'kept');
      });

      it('rejects with the reason, storing no part, when aborted while the source stalls', async () => {
        const { id, parts } = await uploadOf(Buffer.from('kept'));
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        async function* stalling(): AsyncGenerator<Buffer> {
          yield Buffer.from('some bytes');
          await released;
        }
        const controller = new AbortController();
        const reason = new Error('client went away');
        const write = storage.writePart(id, parts, stalling(), {
          signal: controller.signal,
          onData: () => setImmediate(() => controller.abort(reason)),
        });
        try {
          await expect(write).rejects.toBe(reason);
        } finally {
          release();
        }
        await expectUnchanged(id, parts, 'kept');
      });

      it('rejects at once when the signal is already aborted', async () => {
        const { id, parts } = await uploadOf(Buffer.from('kept'));
        const reason = new Error('already gone');
        await expect(storage.writePart(id, parts, chunksOf(Buffer.from('xyz')), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
        await expectUnchanged(id, parts, 'kept');
      });

      it('rethrows, storing no part, when onData throws', async () => {
        const { id, parts } = await uploadOf(Buffer.from('kept'));
        const tooBig = new Error('upload exceeds the size limit');
        let calls = 0;
        const write = storage.writePart(id, parts, chunksOf(Buffer.from('0123456789'), 2), {
          onData: () => {
            if (++calls === 3) throw tooBig;
          },
        });
        await expect(write).rejects.toBe(tooBig);
        await expectUnchanged(id, parts, 'kept');
      });
    });

    describe('commits', () => {
      it('discards the upload when the blob exists already, keeping the blob', async () => {
        const content = Buffer.from('same bytes');
        const digest = await blobOf(content);
        const second = await uploadOf(content);
        await storage.commitUpload(second.id, second.parts, digest);
        expect(await storage.uploadExists(second.id)).toBe(false);
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
        expect(await fixture!.leftovers()).toEqual([blobDataKey(digest)]);
      });

      it('can be repeated after the blob appeared (a commit interrupted before it removed the upload)', async () => {
        const content = Buffer.from('interrupted');
        const digest = sha256(content);
        const { id, parts } = await uploadOf(content);
        await storage.commitUpload(id, parts, digest);
        await storage.createUpload(id);
        await storage.commitUpload(id, parts, digest);
        expect((await readAll(await storage.readBlob(digest))).equals(content)).toBe(true);
        expect(await fixture!.leftovers()).toEqual([blobDataKey(digest)]);
      });

      it('refuses a list naming a part that is not stored, making no blob', async () => {
        const { id, parts } = await uploadOf(Buffer.from('abc'), Buffer.from('def'));
        const digest = sha256(Buffer.from('abcdef'));
        await storage.deleteParts(id, parts.slice(-1));
        await expect(storage.commitUpload(id, parts, digest)).rejects.toBeInstanceOf(UploadNotFoundError);
        expect(await storage.statBlob(digest)).toBeNull();
      });

      it('resolves 8 concurrent commits of the same content from 8 uploads, leaving one blob', async () => {
        const content = randomBytes(256 * 1024);
        const digest = sha256(content);
        const uploads = await Promise.all(Array.from({ length: 8 }, () => uploadOf(content)));
        await Promise.all(uploads.map(({ id, parts }) => storage.commitUpload(id, parts, digest)));
        expect(await collect(storage.listBlobs())).toEqual([digest]);
        expect(await collect(storage.listUploads())).toEqual([]);
        expect(sha256(await readAll(await storage.readBlob(digest)))).toBe(digest);
      });
    });

    describe('reads racing deletes', () => {
      it('keeps a small blob readable by a reader that opened it before it was deleted', async () => {
        const content = randomBytes(16 * 1024);
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
        const kept = await blobOf(Buffer.from('kept'));
        const deleted = await blobOf(Buffer.from('deleted'));
        await storage.deleteBlob(deleted);
        expect(await collect(storage.listBlobs())).toEqual([kept]);
      });

      it('lists blobs with their sizes in ascending digest order, sha256 before sha512', async () => {
        const contents = Array.from({ length: 12 }, (_, i) => randomBytes(100 + i));
        const digests = await Promise.all(contents.map((c) => blobOf(c)));
        const long = Buffer.from('a sha512 blob');
        const sha512Digest = `sha512:${createHash('sha512').update(long).digest('hex')}`;
        const { id, parts } = await uploadOf(long);
        await storage.commitUpload(id, parts, sha512Digest);
        const sizes = new Map([...digests.map((d, i) => [d, contents[i].length] as const), [sha512Digest, long.length]]);
        const listed = await collect(storage.listBlobInfo());
        const expected = [...sizes.keys()].sort();
        expect(listed.map((b) => b.digest)).toEqual(expected);
        expect(listed.map((b) => b.size)).toEqual(expected.map((d) => sizes.get(d)));
        expect(listed.every((b) => b.modified instanceof Date && !Number.isNaN(b.modified.getTime()))).toBe(true);
        expect(await collect(storage.listBlobs())).toEqual(expected);
      });

      it('dates a blob by its commit on the storage clock, not by when its bytes were written', async () => {
        // Storage times only, compared with each other: never with this process's clock.
        const content = Buffer.from('written before the probe, committed after it');
        const late = sha256(content);
        const { id, parts } = await uploadOf(content);
        const early = await blobOf(Buffer.from('committed after that write, before the probe'));
        const earlyTime = (await collect(storage.listBlobInfo()))[0].modified.getTime();
        // The storage clock moves past the early commit (and so past the write) before the probe.
        let probe = await storage.currentTime();
        for (let i = 0; probe.getTime() <= earlyTime; i++) {
          if (i > 10_000) throw new Error(`the storage clock stays at ${probe.toISOString()}`);
          probe = await storage.currentTime();
        }
        await storage.commitUpload(id, parts, late);
        const modified = new Map((await collect(storage.listBlobInfo())).map((b) => [b.digest, b.modified.getTime()]));
        expect(modified.get(early)).toBeLessThan(probe.getTime());
        expect(modified.get(late)).toBeGreaterThanOrEqual(probe.getTime());
      });

      it('reads the clock without leaving anything behind', async () => {
        const first = await storage.currentTime();
        const second = await storage.currentTime();
        expect(second.getTime()).toBeGreaterThanOrEqual(first.getTime());
        expect(await fixture!.leftovers()).toEqual([]);
      });

      it('lists uploads in progress with their start times', async () => {
        const before = Date.now() - 60_000;
        const { id } = await uploadOf(Buffer.from('abc'));
        const listed = await collect(storage.listUploads());
        expect(listed.map((u) => u.id)).toEqual([id]);
        expect(listed[0].startedAt!.getTime()).toBeGreaterThan(before);
        expect(await fixture!.leftovers()).toContain(uploadStartedAtKey(id));
      });
    });

    describe('unknown keys', () => {
      it('reports an unknown blob as absent or not found', async () => {
        const digest = sha256(Buffer.from('never stored'));
        expect(await storage.statBlob(digest)).toBeNull();
        await expect(storage.readBlob(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
        await storage.deleteBlob(digest);
      });

      it('reports an unknown upload or part as absent or not found', async () => {
        const id = randomUUID();
        expect(await storage.uploadExists(id)).toBe(false);
        await expect(storage.writePart(id, [], chunksOf(Buffer.from('x')))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(storage.readUpload(id, [{ name: randomUUID(), size: 1 }])).rejects.toBeInstanceOf(UploadNotFoundError);
        await storage.deleteUpload(id);
        await storage.deleteParts(id, [{ name: randomUUID(), size: 1 }]);
      });
    });

    describe('invalid keys', () => {
      const validDigest = sha256(Buffer.from('valid'));
      const validId = randomUUID();
      const badDigests = [
        '../etc',
        'sha256:XYZ',
        `sha256:${'A'.repeat(64)}`,
        `sha256:${'a'.repeat(63)}`,
        `sha512:${'a'.repeat(64)}`,
        `md5:${'a'.repeat(32)}`,
        `sha256:${'a'.repeat(62)}/.`,
        `sha256:${'a'.repeat(64)}\n`,
        '',
      ];
      const badIds = ['../etc', '..', '', 'not-a-uuid', validId.toUpperCase(), `${validId}/../x`, `${validId}\0`, validId.replace(/-/g, '')];

      it.each(badDigests)('rejects digest %j in every blob operation', async (bad) => {
        await expect(storage.statBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.readBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.deleteBlob(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        const other = await blobOf(Buffer.from('not removed by a batch with a bad digest'));
        await expect(storage.deleteBlobs([other, bad])).rejects.toBeInstanceOf(InvalidStorageKeyError);
        expect(await storage.statBlob(other)).not.toBeNull();
        const { id, parts } = await uploadOf(Buffer.from('x'));
        const error = await storage.commitUpload(id, parts, bad).catch((e: unknown) => e);
        expect(error).toMatchObject({ kind: 'digest', key: bad });
        expect(await storage.uploadExists(id)).toBe(true);
      });

      it.each(badIds)('rejects upload or part id %j in every upload operation', async (bad) => {
        const part = [{ name: bad, size: 1 }];
        await expect(storage.createUpload(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.uploadExists(bad)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.writePart(bad, [], chunksOf(Buffer.from('x')))).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.readUpload(bad, [])).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.commitUpload(bad, [], validDigest)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.deleteUpload(bad)).rejects.toMatchObject({ kind: 'uploadId', key: bad });
        const { id, parts } = await uploadOf(Buffer.from('x'));
        await expect(storage.readUpload(id, part)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.deleteParts(id, part)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.commitUpload(id, [...parts, ...part], validDigest)).rejects.toBeInstanceOf(InvalidStorageKeyError);
        expect(await storage.statBlob(validDigest)).toBeNull();
      });
    });

    describe('large blobs stream', () => {
      it('writes 64 MiB generated lazily with bounded lookahead and reads it back by the right digest', async () => {
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
        const { parts, size } = await storage.writePart(id, [], generate(), {
          onData: (chunk) => {
            consumed += chunk.length / chunkSize;
            hashedInPass.update(chunk);
          },
        });
        const digest = `sha256:${expected.digest('hex')}`;
        expect(size).toBe(chunkSize * chunkCount);
        expect(maxLookahead).toBeLessThanOrEqual(Math.max(16 * MiB, 2 * storage.minPartSize));
        expect(`sha256:${hashedInPass.digest('hex')}`).toBe(digest);

        await storage.commitUpload(id, parts, digest);
        expect(await storage.statBlob(digest)).toEqual({ size: chunkSize * chunkCount });

        const readBack = createHash('sha256');
        let largestChunk = 0;
        for await (const chunk of await storage.readBlob(digest)) {
          largestChunk = Math.max(largestChunk, (chunk as Buffer).length);
          readBack.update(chunk as Buffer);
        }
        expect(`sha256:${readBack.digest('hex')}`).toBe(digest);
        expect(largestChunk).toBeLessThanOrEqual(16 * MiB);
      }, 300_000);
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
