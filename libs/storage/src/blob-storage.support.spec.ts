import {
  KeyedSerializer,
  checkUploadId,
  parseBlobDigest,
  readAppendSource,
  resolveByteRange,
} from './blob-storage.support';
import { InvalidStorageKeyError, RangeNotSatisfiableError } from './storage.error';

describe('parseBlobDigest', () => {
  const sha256 = 'a'.repeat(64);
  const sha512 = 'b'.repeat(128);

  it.each([
    [`sha256:${sha256}`, { algorithm: 'sha256', hex: sha256 }],
    [`sha512:${sha512}`, { algorithm: 'sha512', hex: sha512 }],
  ])('splits %s', (digest, expected) => {
    expect(parseBlobDigest(digest)).toEqual(expected);
  });

  it.each([
    '',
    'sha256:',
    `sha256:${sha256.toUpperCase()}`,
    `sha256:${sha256.slice(1)}`,
    `sha256:${sha256}a`,
    `sha512:${sha256}`,
    `sha384:${'c'.repeat(96)}`,
    `SHA256:${sha256}`,
    ` sha256:${sha256}`,
    `sha256:${sha256}\n`,
    `sha256:../${sha256.slice(3)}`,
    '../etc',
  ])('rejects %j with InvalidStorageKeyError', (digest) => {
    expect(() => parseBlobDigest(digest)).toThrow(InvalidStorageKeyError);
  });
});

describe('checkUploadId', () => {
  it('accepts a lowercase uuid', () => {
    expect(checkUploadId('0f8fad5b-d9cb-469f-a165-70867728950e')).toBe('0f8fad5b-d9cb-469f-a165-70867728950e');
  });

  it.each([
    '',
    '0F8FAD5B-D9CB-469F-A165-70867728950E',
    '0f8fad5bd9cb469fa16570867728950e',
    '0f8fad5b-d9cb-469f-a165-70867728950',
    '../0f8fad5b-d9cb-469f-a165-70867728950e',
    'x',
  ])('rejects %j with InvalidStorageKeyError', (id) => {
    expect(() => checkUploadId(id)).toThrow(InvalidStorageKeyError);
  });
});

describe('resolveByteRange', () => {
  it.each([
    [undefined, 10, { start: 0, end: 9 }],
    [undefined, 0, { start: 0, end: -1 }],
    [{ start: 0, end: 0 }, 1, { start: 0, end: 0 }],
    [{ start: 3, end: 5 }, 10, { start: 3, end: 5 }],
    [{ start: 3, end: 50 }, 10, { start: 3, end: 9 }],
    [{ start: 9, end: 9 }, 10, { start: 9, end: 9 }],
  ])('resolves %o of %i bytes to %o', (range, size, expected) => {
    expect(resolveByteRange(range, size)).toEqual(expected);
  });

  it.each([
    [{ start: 10, end: 10 }, 10],
    [{ start: 0, end: 0 }, 0],
    [{ start: 5, end: 4 }, 10],
    [{ start: -1, end: 4 }, 10],
    [{ start: 0.5, end: 4 }, 10],
    [{ start: 0, end: Infinity }, 10],
  ])('rejects %o of %i bytes with RangeNotSatisfiableError', (range, size) => {
    expect(() => resolveByteRange(range, size)).toThrow(RangeNotSatisfiableError);
  });
});

describe('KeyedSerializer', () => {
  it('runs tasks of one key in call order and tasks of different keys concurrently', async () => {
    const serializer = new KeyedSerializer();
    const events: string[] = [];
    let releaseFirst!: () => void;
    const first = serializer.run('a', async () => {
      events.push('a1 start');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      events.push('a1 end');
    });
    const second = serializer.run('a', async () => {
      events.push('a2');
    });
    await serializer.run('b', async () => {
      events.push('b');
    });
    releaseFirst();
    await Promise.all([first, second]);
    expect(events).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
  });

  it('runs the next task after one that failed', async () => {
    const serializer = new KeyedSerializer();
    const failed = serializer.run('a', async () => {
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    await expect(serializer.run('a', async () => 'next')).resolves.toBe('next');
  });
});

describe('readAppendSource', () => {
  it('closes the source when the consumer stops early', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield Buffer.from('a');
        yield Buffer.from('b');
      } finally {
        closed = true;
      }
    }
    for await (const _chunk of readAppendSource(source())) {
      break;
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
  });

  it('rejects a chunk that is not bytes', async () => {
    async function* source(): AsyncGenerator<unknown> {
      yield 'text';
    }
    const iterate = async () => {
      for await (const _chunk of readAppendSource(source() as AsyncIterable<Buffer>)) {
        // drain
      }
    };
    await expect(iterate()).rejects.toThrow(TypeError);
  });
});
