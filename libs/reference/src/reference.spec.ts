import {
  DigestInvalidError,
  DigestUnsupportedError,
  NameContainsUppercaseError,
  NameEmptyError,
  NameNotCanonicalError,
  NameTooLongError,
  Reference,
  ReferenceInvalidFormatError,
  ReferenceParseError,
  TagInvalidError,
  isCanonical,
  isDigested,
  isNameOnly,
  isNamed,
  isNamedTagged,
  isTagged,
  parse,
  parseAnyReference,
  referenceRegExp,
  trimNamed,
  withDigest,
  withName,
  withTag,
} from './index';

const DIGEST = `sha256:${'1234567890abcdef'.repeat(4)}`;
const OTHER = `sha512:${'f'.repeat(128)}`;

describe('withName', () => {
  it.each([
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', '', 'test_com/foo'],
    ['test:8080/foo', 'test:8080', 'foo'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['foo', '', 'foo'],
  ])('splits %s into %j and %j', (input, domain, path) => {
    expect(withName(input)).toMatchObject({ kind: 'repository', domain, path, name: input });
  });

  it.each<[string, new (...args: never[]) => ReferenceParseError]>([
    ['', NameEmptyError],
    [':justtag', ReferenceInvalidFormatError],
    ['foo:tag', ReferenceInvalidFormatError],
    [`foo@${DIGEST}`, ReferenceInvalidFormatError],
    ['aa/asdf$$^/aa', ReferenceInvalidFormatError],
    ['example.com/Foo', NameContainsUppercaseError],
    [`${'a/'.repeat(128)}a`, NameTooLongError],
  ])('refuses %j with %p', (input, errorClass) => {
    expect(() => withName(input)).toThrow(errorClass);
  });
});

describe('withTag / withDigest / trimNamed', () => {
  it.each([
    ['test.com/foo', 'tag', 'test.com/foo:tag', 'tagged'],
    ['foo', 'tag2', 'foo:tag2', 'tagged'],
    ['test.com:8000/foo', 'TAG5', 'test.com:8000/foo:TAG5', 'tagged'],
    ['foo:old', 'new', 'foo:new', 'tagged'],
    [`test.com:8000/foo@${DIGEST}`, 'TAG5', `test.com:8000/foo:TAG5@${DIGEST}`, 'tagged+canonical'],
  ])('tags %s with %s → %s', (input, tag, expected, kind) => {
    const tagged = withTag(parse(input), tag);
    expect(tagged.toString()).toBe(expected);
    expect(tagged.kind).toBe(kind);
    expect(tagged.tag).toBe(tag);
  });

  it.each([
    ['test.com/foo', DIGEST, `test.com/foo@${DIGEST}`, 'canonical'],
    ['foo:tag', DIGEST, `foo:tag@${DIGEST}`, 'tagged+canonical'],
    [`foo@${DIGEST}`, OTHER, `foo@${OTHER}`, 'canonical'],
  ])('pins %s to %s → %s', (input, digest, expected, kind) => {
    const canonical = withDigest(parse(input), digest);
    expect(canonical.toString()).toBe(expected);
    expect(canonical.kind).toBe(kind);
    expect(canonical.digest).toBe(digest);
  });

  it('refuses an invalid tag or digest with the typed error', () => {
    const named = parse('busybox');
    expect(() => withTag(named, '-foo')).toThrow(TagInvalidError);
    expect(() => withDigest(named, 'foo')).toThrow(DigestInvalidError);
    expect(() => withDigest(named, `sha256:${'f'.repeat(40)}`)).toThrow(DigestInvalidError);
    expect(() => withDigest(named, `blake3:${'f'.repeat(64)}`)).toThrow(DigestUnsupportedError);
  });

  it.each([
    ['foo', 'foo'],
    ['foo:tag', 'foo'],
    [`foo@${DIGEST}`, 'foo'],
    [`example.com:5000/foo:tag@${DIGEST}`, 'example.com:5000/foo'],
  ])('trims %s to %s', (input, expected) => {
    const trimmed = trimNamed(parse(input));
    expect(trimmed.kind).toBe('repository');
    expect(trimmed.toString()).toBe(expected);
  });
});

describe('type guards', () => {
  // input, named, tagged, digested, canonical, name only
  it.each([
    ['foo', 'repository', true, false, false, false, true],
    ['foo:tag', 'tagged', true, true, false, false, false],
    [`foo@${DIGEST}`, 'canonical', true, false, true, true, false],
    [`foo:tag@${DIGEST}`, 'tagged+canonical', true, true, true, true, false],
    [DIGEST, 'digest', false, false, true, false, false],
  ])('classify %s as %s', (input, kind, named, tagged, digested, canonical, nameOnly) => {
    const ref: Reference = input === DIGEST ? parseAnyReference(input) : parse(input);
    expect(ref.kind).toBe(kind);
    expect(isNamed(ref)).toBe(named);
    expect(isTagged(ref)).toBe(tagged);
    expect(isNamedTagged(ref)).toBe(tagged);
    expect(isDigested(ref)).toBe(digested);
    expect(isCanonical(ref)).toBe(canonical);
    expect(isNameOnly(ref)).toBe(nameOnly);
  });

  it('narrows the union so tag and digest are reachable only when present', () => {
    const ref: Reference = parse(`ghcr.io/a/b:v1@${DIGEST}`);
    const described = isNamed(ref) && isTagged(ref) && isCanonical(ref) ? `${ref.path} ${ref.tag} ${ref.digest}` : '';
    expect(described).toBe(`a/b v1 ${DIGEST}`);
  });

  it('hands out immutable references', () => {
    const ref = parse('foo:tag');
    expect(Object.isFrozen(ref)).toBe(true);
    expect(() => {
      (ref as { tag: string }).tag = 'other';
    }).toThrow(TypeError);
  });
});

describe('errors', () => {
  it.each([
    [new ReferenceInvalidFormatError('x'), 'ReferenceInvalidFormatError', 'NAME_INVALID', 'invalid reference format'],
    [new NameNotCanonicalError('x'), 'NameNotCanonicalError', 'NAME_INVALID', 'repository name must be canonical'],
    [
      new NameContainsUppercaseError('X'),
      'NameContainsUppercaseError',
      'NAME_INVALID',
      'repository name must be lowercase',
    ],
    [
      new NameTooLongError('x'),
      'NameTooLongError',
      'NAME_INVALID',
      'repository name must not be more than 255 characters',
    ],
    [new NameEmptyError(), 'NameEmptyError', 'NAME_INVALID', 'repository name must have at least one component'],
    [new TagInvalidError('x'), 'TagInvalidError', 'TAG_INVALID', 'invalid tag format'],
    [new DigestInvalidError(), 'DigestInvalidError', 'DIGEST_INVALID', 'provided digest did not match uploaded content'],
    [
      new DigestUnsupportedError('x'),
      'DigestUnsupportedError',
      'DIGEST_INVALID',
      'unsupported digest algorithm "x" (supported: sha256, sha512)',
    ],
  ])('%p has a stable name, OCI code and message', (error, name, ociCode, message) => {
    expect(error).toBeInstanceOf(ReferenceParseError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.ociCode).toBe(ociCode);
    expect(error.message).toBe(message);
    expect(String(error)).toBe(`${name}: ${message}`);
  });

  it('appends the reason to the message', () => {
    expect(new TagInvalidError('', 'tag must not be empty').message).toBe('invalid tag format: tag must not be empty');
  });
});

describe('referenceRegExp', () => {
  it('exposes the parts as named groups', () => {
    expect(referenceRegExp.exec(`[::1]:5000/a/b:v1@${DIGEST}`)?.groups).toEqual({
      name: '[::1]:5000/a/b',
      domain: '[::1]:5000',
      path: 'a/b',
      tag: 'v1',
      digest: DIGEST,
    });
  });
});
