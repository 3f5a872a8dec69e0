import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as reference from '@lading/reference';
import * as manifest from './index';
import { createDigestStream, DigestAlgorithm, Digester, digestOf, DigestUnsupportedError } from './index';

const SHA256_EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA512_EMPTY =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
const SHA256_ABC = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const SHA512_ABC =
  'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
const SHA256_EMPTY_JSON = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('the digest API re-exported from @lading/reference', () => {
  // One parser and one set of errors: the names this library exports are the reference library's.
  it.each<[string, unknown, unknown]>([
    ['parseDigest', manifest.parseDigest, reference.parseDigest],
    ['isDigest', manifest.isDigest, reference.isValidDigest],
    ['isSupportedAlgorithm', manifest.isSupportedAlgorithm, reference.isSupportedDigestAlgorithm],
    ['digestEquals', manifest.digestEquals, reference.digestEquals],
    ['DIGEST_ALGORITHMS', manifest.DIGEST_ALGORITHMS, reference.DIGEST_ALGORITHMS],
    ['DigestInvalidError', manifest.DigestInvalidError, reference.DigestInvalidError],
    ['DigestUnsupportedError', manifest.DigestUnsupportedError, reference.DigestUnsupportedError],
  ])('%s is the reference library\'s', (_name, ours, theirs) => {
    expect(ours).toBe(theirs);
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

  it.each(['sha256', 'sha512'] as const)('copies its %s state, and the two go on independently', (algorithm) => {
    const original = new Digester(algorithm).update(bytes('a'));
    const twin = original.copy();
    expect(twin).not.toBe(original);
    expect(twin.algorithm).toBe(algorithm);
    expect(twin.digest()).toBe(digestOf(bytes('a'), algorithm));
    expect(twin.bytes).toBe(1);

    original.update(bytes('bc'));
    expect(original.digest()).toBe(digestOf(bytes('abc'), algorithm));
    expect(twin.digest()).toBe(digestOf(bytes('a'), algorithm));

    twin.update(bytes('x'));
    expect(twin.digest()).toBe(digestOf(bytes('ax'), algorithm));
    expect(twin.bytes).toBe(2);
    expect(original.digest()).toBe(digestOf(bytes('abc'), algorithm));
    expect(original.bytes).toBe(3);
  });

  it('gives digests that parseDigest accepts as canonical', () => {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const digest = new Digester(algorithm).update(bytes('abc')).digest();
      expect(manifest.parseDigest(digest).toString()).toBe(digest);
    }
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
