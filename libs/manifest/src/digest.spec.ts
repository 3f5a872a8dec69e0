import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createDigestStream,
  DigestAlgorithm,
  digestEquals,
  Digester,
  DigestInvalidError,
  digestOf,
  DigestUnsupportedError,
  isDigest,
  ManifestError,
  parseDigest,
} from './index';

const SHA256_EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA512_EMPTY =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
const SHA256_ABC = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const SHA512_ABC =
  'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
const SHA256_EMPTY_JSON = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex64 = 'a'.repeat(64);
const hex128 = 'b'.repeat(128);

describe('parseDigest', () => {
  it.each<[string, DigestAlgorithm, string]>([
    [SHA256_EMPTY, 'sha256', SHA256_EMPTY.slice(7)],
    [SHA512_EMPTY, 'sha512', SHA512_EMPTY.slice(7)],
    [`sha256:${hex64}`, 'sha256', hex64],
    [`sha512:${hex128}`, 'sha512', hex128],
  ])('accepts %s', (input, algorithm, encoded) => {
    const digest = parseDigest(input);
    expect(digest.algorithm).toBe(algorithm);
    expect(digest.encoded).toBe(encoded);
    expect(digest.toString()).toBe(input);
    expect(`${digest}`).toBe(input);
    expect(JSON.stringify({ digest })).toBe(JSON.stringify({ digest: input }));
  });

  it.each<[string, string, typeof DigestInvalidError]>([
    ['empty string', '', DigestInvalidError],
    ['no colon', hex64, DigestInvalidError],
    ['no algorithm', `:${hex64}`, DigestInvalidError],
    ['no encoded part', 'sha256:', DigestInvalidError],
    ['sha256 one character short', `sha256:${hex64.slice(1)}`, DigestInvalidError],
    ['sha256 one character long', `sha256:${hex64}a`, DigestInvalidError],
    ['sha256 with 128 hex characters', `sha256:${hex128}`, DigestInvalidError],
    ['sha512 with 64 hex characters', `sha512:${hex64}`, DigestInvalidError],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`, DigestInvalidError],
    ['upper-case algorithm', `SHA256:${hex64}`, DigestInvalidError],
    ['non-hex character', `sha256:${'g'.repeat(64)}`, DigestInvalidError],
    ['surrounding space', ` sha256:${hex64}`, DigestInvalidError],
    ['trailing newline', `sha256:${hex64}\n`, DigestInvalidError],
    ['two colons', `sha256:${hex64}:x`, DigestInvalidError],
    ['separator at the start of the algorithm', `+sha256:${hex64}`, DigestInvalidError],
    ['very long input', `sha256:${'a'.repeat(100_000)}`, DigestInvalidError],
    ['well-formed sha384', `sha384:${'c'.repeat(96)}`, DigestUnsupportedError],
    ['well-formed md5', 'md5:d41d8cd98f00b204e9800998ecf8427e', DigestUnsupportedError],
    ['multi-part algorithm', `multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8`, DigestUnsupportedError],
    ['base64-ish encoding of another algorithm', 'blake3:abc_DEF-=', DigestUnsupportedError],
  ])('refuses %s', (_name, input, errorClass) => {
    const error = captureError(() => parseDigest(input));
    expect(error).toBeInstanceOf(errorClass);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).ociCode).toBe('DIGEST_INVALID');
    expect(JSON.parse(JSON.stringify((error as ManifestError).detail))).toEqual((error as ManifestError).detail);
  });

  it('names the algorithm in the unsupported error message', () => {
    expect(() => parseDigest(`sha384:${'c'.repeat(96)}`)).toThrow(/unsupported digest algorithm "sha384"/);
  });

  it('makes every unsupported error also a DigestInvalidError', () => {
    expect(captureError(() => parseDigest('md5:abc'))).toBeInstanceOf(DigestInvalidError);
  });

  it('keeps an excerpt, not the whole input, in the error detail', () => {
    const error = captureError(() => parseDigest(`sha256:${'a'.repeat(100_000)}`)) as ManifestError;
    expect(JSON.stringify(error.detail).length).toBeLessThan(400);
  });
});

describe('isDigest', () => {
  it.each<[unknown, boolean]>([
    [SHA256_EMPTY, true],
    [SHA512_EMPTY, true],
    [`sha256:${'A'.repeat(64)}`, false],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', false],
    ['latest', false],
    [42, false],
    [null, false],
    [undefined, false],
  ])('isDigest(%p) is %p', (input, expected) => {
    expect(isDigest(input)).toBe(expected);
  });
});

describe('digestEquals', () => {
  it.each<[string, string | (() => ReturnType<typeof parseDigest>), string, boolean]>([
    ['the same string', SHA256_EMPTY, SHA256_EMPTY, true],
    ['a Digest and its string', () => parseDigest(SHA256_EMPTY), SHA256_EMPTY, true],
    ['different content', SHA256_EMPTY, SHA256_ABC, false],
    ['different algorithms', SHA256_EMPTY, SHA512_EMPTY, false],
    ['an invalid left side', 'nope', SHA256_EMPTY, false],
    ['two identical invalid strings', 'nope', 'nope', false],
    ['two identical unsupported digests', 'md5:abc', 'md5:abc', false],
  ])('compares %s', (_name, left, right, expected) => {
    const a = typeof left === 'function' ? left() : left;
    expect(digestEquals(a, right)).toBe(expected);
    expect(digestEquals(right, a)).toBe(expected);
  });
});

describe('digestOf', () => {
  it.each<[string, string, DigestAlgorithm | undefined, string]>([
    ['empty input, default algorithm', '', undefined, SHA256_EMPTY],
    ['empty input, sha256', '', 'sha256', SHA256_EMPTY],
    ['empty input, sha512', '', 'sha512', SHA512_EMPTY],
    ['"abc", sha256', 'abc', 'sha256', SHA256_ABC],
    ['"abc", sha512', 'abc', 'sha512', SHA512_ABC],
    ['the OCI empty blob', '{}', 'sha256', SHA256_EMPTY_JSON],
  ])('hashes %s', (_name, input, algorithm, expected) => {
    expect(digestOf(bytes(input), algorithm)).toBe(expected);
  });

  it('accepts a Buffer', () => {
    expect(digestOf(Buffer.from('abc'))).toBe(SHA256_ABC);
  });

  it('refuses an algorithm it does not support with DigestUnsupportedError', () => {
    expect(() => digestOf(bytes(''), 'md5' as DigestAlgorithm)).toThrow(DigestUnsupportedError);
  });
});

/** Deterministic pseudo-random bytes, so failures are reproducible. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

/** Splits `data` at the given offsets. */
function split(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const bounds = [0, ...cuts, data.length];
  return bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
}

const CHUNKINGS: [string, number, number[]][] = [
  ['no bytes at all', 0, []],
  ['one chunk', 1000, []],
  ['two chunks', 1000, [500]],
  ['empty chunks in between', 1000, [0, 0, 10, 10, 999]],
  ['one byte at a time', 64, Array.from({ length: 63 }, (_, i) => i + 1)],
  ['uneven chunks beyond a stream buffer', 200_003, [1, 16_384, 16_385, 150_001]],
];

describe('Digester', () => {
  it.each(CHUNKINGS)('matches digestOf over the same bytes split into %s', (_name, length, cuts) => {
    const data = pseudoRandomBytes(length, length + 7);
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const digester = new Digester(algorithm);
      for (const chunk of split(data, cuts)) digester.update(chunk);
      expect(digester.digest()).toBe(digestOf(data, algorithm));
      expect(digester.bytes).toBe(length);
    }
  });

  it('defaults to sha256 and starts at the digest of nothing', () => {
    const digester = new Digester();
    expect(digester.algorithm).toBe('sha256');
    expect(digester.digest()).toBe(SHA256_EMPTY);
    expect(digester.bytes).toBe(0);
  });

  it('can be asked for the digest, updated further, and asked again', () => {
    const digester = new Digester().update(bytes('a'));
    expect(digester.digest()).toBe(digestOf(bytes('a')));
    expect(digester.digest()).toBe(digestOf(bytes('a')));
    digester.update(bytes('bc'));
    expect(digester.digest()).toBe(SHA256_ABC);
    expect(digester.bytes).toBe(3);
  });

  it('refuses an unsupported algorithm with DigestUnsupportedError', () => {
    expect(() => new Digester('sha1' as DigestAlgorithm)).toThrow(DigestUnsupportedError);
  });
});

describe('createDigestStream', () => {
  it.each(CHUNKINGS)(
    'passes bytes through unchanged and digests them when split into %s',
    async (_name, length, cuts) => {
      const data = pseudoRandomBytes(length, length + 11);
      for (const algorithm of ['sha256', 'sha512'] as const) {
        const stream = createDigestStream(algorithm);
        const received: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            received.push(chunk);
            callback();
          },
        });
        await pipeline(Readable.from(split(data, cuts).map((chunk) => Buffer.from(chunk))), stream, sink);
        expect(Buffer.concat(received).equals(Buffer.from(data))).toBe(true);
        expect(stream.digest()).toBe(digestOf(data, algorithm));
        expect(stream.bytes).toBe(length);
        expect(stream.algorithm).toBe(algorithm);
      }
    },
  );

  it('defaults to sha256', async () => {
    const stream = createDigestStream();
    stream.resume();
    stream.end(Buffer.from('abc'));
    await new Promise((resolve) => stream.on('end', resolve));
    expect(stream.digest()).toBe(SHA256_ABC);
    expect(stream.bytes).toBe(3);
  });

  it('refuses an unsupported algorithm with DigestUnsupportedError', () => {
    expect(() => createDigestStream('sha1' as DigestAlgorithm)).toThrow(DigestUnsupportedError);
  });
});

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
