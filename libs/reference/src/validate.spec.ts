import {
  NameContainsUppercaseError,
  NameEmptyError,
  NameTooLongError,
  ReferenceInvalidFormatError,
  ReferenceParseError,
  TagInvalidError,
  assertRepositoryName,
  assertTag,
  grammar,
  isValidDomain,
  isValidRepositoryName,
  isValidTag,
} from './index';

type ErrorClass = new (...args: never[]) => ReferenceParseError;

describe('repository names (path only, as in /v2/<name>/)', () => {
  it.each([
    'a',
    'library/ubuntu',
    'docker-rules/docker',
    'docker---rules/docker',
    'dock__er/docker',
    'a.b_c/d-e/f0',
    'd/docker',
    'jess/t',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'a'.repeat(255),
    `${'a/'.repeat(127)}a`,
  ])('accepts %s', (path) => {
    expect(isValidRepositoryName(path)).toBe(true);
    expect(() => assertRepositoryName(path)).not.toThrow();
  });

  it.each<[string, ErrorClass]>([
    ['', NameEmptyError],
    ['Docker', NameContainsUppercaseError],
    ['library/Ubuntu', NameContainsUppercaseError],
    ['a'.repeat(256), NameTooLongError],
    [`${'a/'.repeat(128)}a`, NameTooLongError],
    ['a..b', ReferenceInvalidFormatError],
    ['a//b', ReferenceInvalidFormatError],
    ['a-', ReferenceInvalidFormatError],
    ['a/', ReferenceInvalidFormatError],
    ['/a', ReferenceInvalidFormatError],
    ['a___b', ReferenceInvalidFormatError],
    ['a_-b', ReferenceInvalidFormatError],
    ['localhost:5000/a', ReferenceInvalidFormatError],
    ['a:tag', ReferenceInvalidFormatError],
    ['a b', ReferenceInvalidFormatError],
    ['é', ReferenceInvalidFormatError],
  ])('refuses %j with %p', (path, errorClass) => {
    expect(isValidRepositoryName(path)).toBe(false);
    expect(() => assertRepositoryName(path)).toThrow(errorClass);
    expect(() => assertRepositoryName(path)).toThrow(expect.objectContaining({ ociCode: 'NAME_INVALID' }));
  });
});

describe('tags', () => {
  it.each(['latest', 'v1.2.3', '_', '_x', 'A', 'UPPER-case.1_2', '0', 't'.repeat(128)])('accepts %s', (tag) => {
    expect(isValidTag(tag)).toBe(true);
    expect(() => assertTag(tag)).not.toThrow();
  });

  it.each([
    ['', /empty/],
    ['-x', /starts with/],
    ['.x', /starts with/],
    ['a:b', /starts with/],
    ['a/b', /starts with/],
    ['a@b', /starts with/],
    ['ünicode', /starts with/],
    ['t'.repeat(129), /128 characters, got 129/],
  ])('refuses %j, saying why', (tag, why) => {
    expect(isValidTag(tag)).toBe(false);
    expect(() => assertTag(tag)).toThrow(TagInvalidError);
    expect(() => assertTag(tag)).toThrow(why);
    expect(() => assertTag(tag)).toThrow(expect.objectContaining({ ociCode: 'TAG_INVALID', detail: { tag } }));
  });
});

describe('domains', () => {
  it.each([
    'localhost',
    'localhost:5000',
    'registry.example.com',
    'REGISTRY.Example.COM:443',
    'xn--n3h.com:18080',
    'a-b',
    '10.0.0.1',
    '10.0.0.1:80',
    '[::1]',
    '[::1]:5000',
    '[2001:db8:1:2:3:4:5:6]:5000',
  ])('accepts %s', (domain) => {
    expect(isValidDomain(domain)).toBe(true);
  });

  it.each([
    '',
    '-a.com',
    'a-.com',
    'a..com',
    '.a',
    'a.',
    'a:',
    'a:port',
    '::1',
    '[::1',
    '[fe80::1%eth0]',
    'a_b.com',
    'host/path',
  ])('refuses %j', (domain) => {
    expect(isValidDomain(domain)).toBe(false);
  });
});

describe('grammar pieces', () => {
  const whole = (source: string) => new RegExp(`^${source}$`);

  it.each([
    ['pathComponent', 'a.b__c---d', true],
    ['pathComponent', 'a/b', false],
    ['path', 'a/b.c/d', true],
    ['separator', '__', true],
    ['separator', '___', false],
    ['separator', '---', true],
    ['domainComponent', 'a-b', true],
    ['domainComponent', '-a', false],
    ['ipv6Address', '[::1]', true],
    ['digestAlgorithm', 'sha256+b64u', true],
    ['digestAlgorithm', 'sha256+', false],
    ['digestEncoded', 'abc=_-XYZ', true],
    ['identifier', 'f'.repeat(64), true],
    ['identifier', 'F'.repeat(64), false],
    ['tag', 'v1', true],
    ['reference', `ghcr.io/a/b:v1@sha256:${'f'.repeat(64)}`, true],
  ] as const)('%s %j → %s', (piece, input, matches) => {
    expect(whole(grammar[piece]).test(input)).toBe(matches);
  });

  it('has no capturing groups, so pieces compose without renumbering', () => {
    for (const source of Object.values(grammar)) {
      expect(new RegExp(`${source}|`).exec('')?.length).toBe(1);
    }
  });
});
