import {
  DIGEST_ALGORITHMS,
  DigestAlgorithm,
  DigestInvalidError,
  DigestUnsupportedError,
  ReferenceParseError,
  assertDigest,
  digestEquals,
  excerpt,
  isSupportedDigestAlgorithm,
  isValidDigest,
  parseDigest,
} from './index';

const SHA256_EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA512_EMPTY =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
const SHA256_ABC = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const hex64 = 'a'.repeat(64);
const hex128 = 'b'.repeat(128);
const mixedHex128 = '0123456789abcdef'.repeat(8);

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('parseDigest accepts', () => {
  it.each<[string, DigestAlgorithm, string]>([
    [SHA256_EMPTY, 'sha256', SHA256_EMPTY.slice(7)],
    [SHA512_EMPTY, 'sha512', SHA512_EMPTY.slice(7)],
    [`sha256:${hex64}`, 'sha256', hex64],
    [`sha512:${hex128}`, 'sha512', hex128],
    [`sha512:${mixedHex128}`, 'sha512', mixedHex128],
  ])('%s', (input, algorithm, encoded) => {
    const digest = parseDigest(input);
    expect(digest).toEqual({ algorithm, encoded });
    expect(digest.toString()).toBe(input);
    expect(`${digest}`).toBe(input);
    expect(JSON.stringify({ digest })).toBe(JSON.stringify({ digest: input }));
    expect(Object.isFrozen(digest)).toBe(true);
    expect(isValidDigest(input)).toBe(true);
    expect(() => assertDigest(input)).not.toThrow();
  });
});

// label, input, error class, what the message must say
const refused: Array<[string, string, typeof DigestInvalidError, RegExp]> = [
  ['empty string', '', DigestInvalidError, /algorithm:encoded/],
  ['no colon, no hex', 'sha256', DigestInvalidError, /algorithm:encoded/],
  ['no colon', hex64, DigestInvalidError, /algorithm:encoded/],
  ['no encoded part', 'sha256:', DigestInvalidError, /algorithm:encoded/],
  ['no algorithm', `:${hex64}`, DigestInvalidError, /algorithm:encoded/],
  ['upper-case algorithm', `SHA256:${hex64}`, DigestInvalidError, /algorithm:encoded/],
  ['a character outside the grammar', `sha256:${hex64}!`, DigestInvalidError, /algorithm:encoded/],
  ['two colons in a row', `sha256::${hex64}`, DigestInvalidError, /algorithm:encoded/],
  ['two colons', `sha256:${hex64}:x`, DigestInvalidError, /algorithm:encoded/],
  ['surrounding space', ` sha256:${hex64}`, DigestInvalidError, /algorithm:encoded/],
  ['trailing newline', `sha256:${hex64}\n`, DigestInvalidError, /algorithm:encoded/],
  ['separator at the start of the algorithm', `+sha256:${hex64}`, DigestInvalidError, /algorithm:encoded/],
  ['sha256 one character short', `sha256:${'a'.repeat(63)}`, DigestInvalidError, /64 hex characters, got 63/],
  ['sha256 one character long', `sha256:${'a'.repeat(65)}`, DigestInvalidError, /64 hex characters, got 65/],
  ['sha256 with 128 hex characters', `sha256:${hex128}`, DigestInvalidError, /64 hex characters, got 128/],
  ['sha512 with 64 hex characters', `sha512:${hex64}`, DigestInvalidError, /128 hex characters, got 64/],
  ['upper-case hex', `sha256:${'A'.repeat(64)}`, DigestInvalidError, /lower-case hex/],
  ['letters past f', `sha256:${'z'.repeat(64)}`, DigestInvalidError, /lower-case hex/],
  ['non-hex character', `sha256:${'g'.repeat(64)}`, DigestInvalidError, /lower-case hex/],
  ['padding characters', `sha256:${'='.repeat(64)}`, DigestInvalidError, /lower-case hex/],
  ['very long input', `sha256:${'a'.repeat(100_000)}`, DigestInvalidError, /longer than 256 characters/],
  ['well-formed md5', 'md5:d41d8cd98f00b204e9800998ecf8427e', DigestUnsupportedError, /unsupported digest algorithm "md5"/],
  ['well-formed sha384', `sha384:${'c'.repeat(96)}`, DigestUnsupportedError, /unsupported digest algorithm "sha384"/],
  ['sha256 in base64url', 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', DigestUnsupportedError, /sha256\+b64u/],
  ['multi-part algorithm', 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8', DigestUnsupportedError, /multihash\+base58/],
  ['base64-ish encoding of another algorithm', 'blake3:abc_DEF-=', DigestUnsupportedError, /"blake3"/],
];

describe('parseDigest refuses', () => {
  it.each(refused)('%s', (_label, input, errorClass, why) => {
    const error = captureError(() => parseDigest(input)) as DigestInvalidError;
    expect(error).toBeInstanceOf(errorClass);
    if (errorClass === DigestInvalidError) expect(error).not.toBeInstanceOf(DigestUnsupportedError);
    expect(error).toBeInstanceOf(DigestInvalidError);
    expect(error).toBeInstanceOf(ReferenceParseError);
    expect(error.name).toBe(errorClass.name);
    expect(error.ociCode).toBe('DIGEST_INVALID');
    expect(error.message).toMatch(why);
    expect(error.detail).toEqual({ digest: excerpt(input) });
    expect(JSON.parse(JSON.stringify(error.detail))).toEqual(error.detail);
    expect(JSON.stringify(error.detail).length).toBeLessThan(400);
    expect(isValidDigest(input)).toBe(false);
    expect(() => assertDigest(input)).toThrow(errorClass);
  });

  it('names the field it was given in the message and the detail', () => {
    const error = captureError(() => parseDigest('sha256:abc', 'layers[0].digest')) as DigestInvalidError;
    expect(error.message).toBe('invalid digest at layers[0].digest: sha256 needs 64 hex characters, got 3');
    expect(error.detail).toEqual({ digest: 'sha256:abc', path: 'layers[0].digest' });
    const unsupported = captureError(() => parseDigest('md5:abc', 'config.digest')) as DigestUnsupportedError;
    expect(unsupported).toBeInstanceOf(DigestUnsupportedError);
    expect(unsupported.algorithm).toBe('md5');
    expect(unsupported.detail).toEqual({ digest: 'md5:abc', path: 'config.digest' });
  });
});

describe('isValidDigest', () => {
  it.each<[unknown, boolean]>([
    [SHA256_EMPTY, true],
    [SHA512_EMPTY, true],
    [`sha256:${'A'.repeat(64)}`, false],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', false],
    ['latest', false],
    [42, false],
    [null, false],
    [undefined, false],
  ])('isValidDigest(%p) is %p', (input, expected) => {
    expect(isValidDigest(input)).toBe(expected);
  });
});

describe('isSupportedDigestAlgorithm', () => {
  it.each<[unknown, boolean]>([
    ['sha256', true],
    ['sha512', true],
    ['sha384', false],
    ['toString', false],
    ['__proto__', false],
    [256, false],
  ])('knows whether %p is supported', (algorithm, supported) => {
    expect(isSupportedDigestAlgorithm(algorithm)).toBe(supported);
  });

  it('agrees with DIGEST_ALGORITHMS, sha256 first', () => {
    expect(DIGEST_ALGORITHMS).toEqual(['sha256', 'sha512']);
    expect(DIGEST_ALGORITHMS.every(isSupportedDigestAlgorithm)).toBe(true);
    expect(Object.isFrozen(DIGEST_ALGORITHMS)).toBe(true);
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

describe('DigestInvalidError', () => {
  it('defaults to the distribution spec wording for content that does not match', () => {
    const error = new DigestInvalidError(undefined, { expected: SHA256_EMPTY, actual: SHA256_ABC });
    expect(error.message).toBe('provided digest did not match uploaded content');
    expect(error).toMatchObject({ ociCode: 'DIGEST_INVALID', detail: { expected: SHA256_EMPTY, actual: SHA256_ABC } });
  });
});
