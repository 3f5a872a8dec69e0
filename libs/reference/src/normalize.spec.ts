import {
  DigestInvalidError,
  NameContainsUppercaseError,
  NameNotCanonicalError,
  NameTooLongError,
  ReferenceInvalidFormatError,
  ReferenceParseError,
  familiarName,
  familiarString,
  isCanonical,
  isTagged,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  tagNameOnly,
  withDefaultTag,
} from './index';

const HEX = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
const DIGEST = `sha256:${HEX}`;

type ErrorClass = new (...args: never[]) => ReferenceParseError;

describe('parseNormalizedNamed', () => {
  // Every spelling of one repository normalises to the same canonical name and back to the familiar one.
  it.each([
    { input: 'fooo/bar', full: 'docker.io/fooo/bar', familiar: 'fooo/bar', domain: 'docker.io', path: 'fooo/bar' },
    {
      input: 'index.docker.io/fooo/bar',
      full: 'docker.io/fooo/bar',
      familiar: 'fooo/bar',
      domain: 'docker.io',
      path: 'fooo/bar',
    },
    {
      input: 'ubuntu',
      full: 'docker.io/library/ubuntu',
      familiar: 'ubuntu',
      domain: 'docker.io',
      path: 'library/ubuntu',
    },
    {
      input: 'library/ubuntu',
      full: 'docker.io/library/ubuntu',
      familiar: 'ubuntu',
      domain: 'docker.io',
      path: 'library/ubuntu',
    },
    {
      input: 'docker.io/ubuntu',
      full: 'docker.io/library/ubuntu',
      familiar: 'ubuntu',
      domain: 'docker.io',
      path: 'library/ubuntu',
    },
    {
      input: 'index.docker.io/ubuntu',
      full: 'docker.io/library/ubuntu',
      familiar: 'ubuntu',
      domain: 'docker.io',
      path: 'library/ubuntu',
    },
    {
      input: 'docker.io/library/ubuntu',
      full: 'docker.io/library/ubuntu',
      familiar: 'ubuntu',
      domain: 'docker.io',
      path: 'library/ubuntu',
    },
    {
      input: 'nonlibrary/ubuntu',
      full: 'docker.io/nonlibrary/ubuntu',
      familiar: 'nonlibrary/ubuntu',
      domain: 'docker.io',
      path: 'nonlibrary/ubuntu',
    },
    {
      input: 'other/library',
      full: 'docker.io/other/library',
      familiar: 'other/library',
      domain: 'docker.io',
      path: 'other/library',
    },
    {
      input: 'library/foo/bar',
      full: 'docker.io/library/foo/bar',
      familiar: 'library/foo/bar',
      domain: 'docker.io',
      path: 'library/foo/bar',
    },
    {
      input: 'store/foo/bar',
      full: 'docker.io/store/foo/bar',
      familiar: 'store/foo/bar',
      domain: 'docker.io',
      path: 'store/foo/bar',
    },
    {
      input: 'ubuntu-12.04-base',
      full: 'docker.io/library/ubuntu-12.04-base',
      familiar: 'ubuntu-12.04-base',
      domain: 'docker.io',
      path: 'library/ubuntu-12.04-base',
    },
    {
      input: 'test_com/foo',
      full: 'docker.io/test_com/foo',
      familiar: 'test_com/foo',
      domain: 'docker.io',
      path: 'test_com/foo',
    },
    {
      input: '127.0.0.1:8000/private/moonbase',
      full: '127.0.0.1:8000/private/moonbase',
      familiar: '127.0.0.1:8000/private/moonbase',
      domain: '127.0.0.1:8000',
      path: 'private/moonbase',
    },
    {
      input: 'example.com/privatebase',
      full: 'example.com/privatebase',
      familiar: 'example.com/privatebase',
      domain: 'example.com',
      path: 'privatebase',
    },
    {
      input: 'example.com:8000/private/moonbase',
      full: 'example.com:8000/private/moonbase',
      familiar: 'example.com:8000/private/moonbase',
      domain: 'example.com:8000',
      path: 'private/moonbase',
    },
    {
      input: 'test-com:8080/foo',
      full: 'test-com:8080/foo',
      familiar: 'test-com:8080/foo',
      domain: 'test-com:8080',
      path: 'foo',
    },
    {
      input: 'xn--n3h.com:18080/foo',
      full: 'xn--n3h.com:18080/foo',
      familiar: 'xn--n3h.com:18080/foo',
      domain: 'xn--n3h.com:18080',
      path: 'foo',
    },
    { input: 'localhost/foo', full: 'localhost/foo', familiar: 'localhost/foo', domain: 'localhost', path: 'foo' },
    {
      input: 'localhost:5000/foo/bar',
      full: 'localhost:5000/foo/bar',
      familiar: 'localhost:5000/foo/bar',
      domain: 'localhost:5000',
      path: 'foo/bar',
    },
    { input: '[::1]:5000/foo', full: '[::1]:5000/foo', familiar: '[::1]:5000/foo', domain: '[::1]:5000', path: 'foo' },
    { input: 'Foo/bar', full: 'Foo/bar', familiar: 'Foo/bar', domain: 'Foo', path: 'bar' },
    { input: 'FOO/bar', full: 'FOO/bar', familiar: 'FOO/bar', domain: 'FOO', path: 'bar' },
  ])('normalises $input to $full', ({ input, full, familiar, domain, path }) => {
    const named = parseNormalizedNamed(input);
    expect(named.toString()).toBe(full);
    expect(named.domain).toBe(domain);
    expect(named.path).toBe(path);
    expect(familiarName(named)).toBe(familiar);
    expect(parseNormalizedNamed(familiar).toString()).toBe(full);
    expect(parseNormalizedNamed(full)).toEqual(named);
  });

  it.each([
    { input: 'ubuntu:22.04', full: 'docker.io/library/ubuntu:22.04', familiar: 'ubuntu:22.04' },
    { input: `ubuntu@${DIGEST}`, full: `docker.io/library/ubuntu@${DIGEST}`, familiar: `ubuntu@${DIGEST}` },
    {
      input: `busybox:latest@${DIGEST}`,
      full: `docker.io/library/busybox:latest@${DIGEST}`,
      familiar: `busybox:latest@${DIGEST}`,
    },
    { input: 'dmcgowan/myapp:latest', full: 'docker.io/dmcgowan/myapp:latest', familiar: 'dmcgowan/myapp:latest' },
    { input: 'localhost:5000/app:v1', full: 'localhost:5000/app:v1', familiar: 'localhost:5000/app:v1' },
    // A lone component is never host:port, so the port reads as a tag (docker behaves the same).
    { input: 'localhost:5000', full: 'docker.io/library/localhost:5000', familiar: 'localhost:5000' },
  ])('keeps tag and digest of $input', ({ input, full, familiar }) => {
    const named = parseNormalizedNamed(input);
    expect(named.toString()).toBe(full);
    expect(familiarString(named)).toBe(familiar);
  });

  it.each<{ input: string; error: ErrorClass }>([
    { input: '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', error: ReferenceInvalidFormatError },
    { input: 'docker/Docker', error: NameContainsUppercaseError },
    { input: 'docker.io/docker/Docker', error: NameContainsUppercaseError },
    { input: 'Ubuntu', error: NameContainsUppercaseError },
    { input: 'example.com/Team/app:Tag', error: NameContainsUppercaseError },
    { input: 'https://github.com/docker/docker', error: ReferenceInvalidFormatError },
    { input: '-docker', error: ReferenceInvalidFormatError },
    { input: '-docker/docker', error: ReferenceInvalidFormatError },
    { input: 'docker-/docker', error: ReferenceInvalidFormatError },
    { input: '____/____', error: ReferenceInvalidFormatError },
    { input: 'dock..er/docker', error: ReferenceInvalidFormatError },
    { input: 'dock_.er/docker', error: ReferenceInvalidFormatError },
    { input: 'dock-.er/docker', error: ReferenceInvalidFormatError },
    { input: 'docker/', error: ReferenceInvalidFormatError },
    { input: 'docker.io/docker///docker', error: ReferenceInvalidFormatError },
    { input: '[fc00::1]', error: ReferenceInvalidFormatError },
    { input: '[fc00::1]:5000', error: ReferenceInvalidFormatError },
    { input: 'fc00::1:5000/debian', error: ReferenceInvalidFormatError },
    { input: '[fe80::1%eth0]:5000/debian', error: ReferenceInvalidFormatError },
    { input: `ubuntu@sha256:${HEX.toUpperCase()}`, error: DigestInvalidError },
    // 246 characters fit the limit as written, but not once `docker.io/` is added.
    { input: `team/${'a'.repeat(241)}`, error: NameTooLongError },
    {
      input: `this_is_not_a_valid_namespace_because_its_length_is_greater_than_255_${'x'.repeat(200)}/docker`,
      error: NameTooLongError,
    },
  ])('refuses $input with $error.name', ({ input, error }) => {
    expect(() => parseNormalizedNamed(input)).toThrow(error);
  });

  it('accepts a 64-hex path once a domain says it is a name, though its familiar form is then refused', () => {
    const hex = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';
    const named = parseNormalizedNamed(`docker.io/${hex}`);
    expect(named.toString()).toBe(`docker.io/library/${hex}`);
    expect(familiarName(named)).toBe(hex);
    expect(() => parseNormalizedNamed(familiarName(named))).toThrow(ReferenceInvalidFormatError);
  });

  it('explains why a bare 64-hex string is refused', () => {
    expect(() => parseNormalizedNamed(HEX)).toThrow(/64-byte hexadecimal/);
  });
});

describe('parseNamed', () => {
  it.each([
    'docker.io/library/ubuntu',
    'docker.io/library/ubuntu:22.04',
    'localhost:5000/app',
    `ghcr.io/a/b@${DIGEST}`,
  ])('accepts the canonical %s', (input) => {
    expect(parseNamed(input).toString()).toBe(input);
  });

  it.each(['ubuntu', 'library/ubuntu', 'docker.io/ubuntu', 'index.docker.io/library/ubuntu', 'foo/bar:v1'])(
    'refuses the familiar %s with NAME_INVALID',
    (input) => {
      expect(() => parseNamed(input)).toThrow(NameNotCanonicalError);
      expect(() => parseNamed(input)).toThrow(expect.objectContaining({ ociCode: 'NAME_INVALID' }));
    },
  );
});

describe('tagNameOnly / withDefaultTag', () => {
  it.each([
    ['ubuntu', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    [`ubuntu@${DIGEST}`, `docker.io/library/ubuntu@${DIGEST}`],
    [`ubuntu:22.04@${DIGEST}`, `docker.io/library/ubuntu:22.04@${DIGEST}`],
  ])('turns %s into %s', (input, expected) => {
    expect(tagNameOnly(parseNormalizedNamed(input)).toString()).toBe(expected);
    expect(withDefaultTag(parseNormalizedNamed(input)).toString()).toBe(expected);
  });
});

describe('parseDockerRef', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx:latest', 'tagged'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27', 'tagged'],
    [`nginx@${DIGEST}`, `docker.io/library/nginx@${DIGEST}`, 'canonical'],
    [`nginx:1.27@${DIGEST}`, `docker.io/library/nginx@${DIGEST}`, 'canonical'],
    ['index.docker.io/user/app', 'docker.io/user/app:latest', 'tagged'],
    [`docker.io/library/busybox:latest@${DIGEST}`, `docker.io/library/busybox@${DIGEST}`, 'canonical'],
    ['registry.example.com:5000/team/app', 'registry.example.com:5000/team/app:latest', 'tagged'],
  ])('turns %s into %s (%s)', (input, expected, kind) => {
    const ref = parseDockerRef(input);
    expect(ref.toString()).toBe(expected);
    expect(ref.kind).toBe(kind);
  });
});

describe('parseAnyReference', () => {
  it.each([
    ['redis', 'docker.io/library/redis', 'repository'],
    ['redis:latest', 'docker.io/library/redis:latest', 'tagged'],
    [`redis@${DIGEST}`, `docker.io/library/redis@${DIGEST}`, 'canonical'],
    ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp', 'repository'],
    [HEX, DIGEST, 'digest'],
    [DIGEST, DIGEST, 'digest'],
    [HEX.slice(0, 63), `docker.io/library/${HEX.slice(0, 63)}`, 'repository'],
    ['dbcc1', 'docker.io/library/dbcc1', 'repository'],
  ])('reads %s as %s', (input, expected, kind) => {
    const ref = parseAnyReference(input);
    expect(ref.toString()).toBe(expected);
    expect(ref.kind).toBe(kind);
    expect(familiarString(ref)).toBe(kind === 'digest' ? DIGEST : input);
  });
});

describe('familiarName / familiarString', () => {
  it.each([
    ['docker.io/library/ubuntu', 'ubuntu', 'ubuntu'],
    ['docker.io/library/ubuntu:22.04', 'ubuntu', 'ubuntu:22.04'],
    [`docker.io/library/ubuntu:22.04@${DIGEST}`, 'ubuntu', `ubuntu:22.04@${DIGEST}`],
    ['docker.io/foo/bar', 'foo/bar', 'foo/bar'],
    ['docker.io/library/foo/bar', 'library/foo/bar', 'library/foo/bar'],
    ['ghcr.io/library/ubuntu', 'ghcr.io/library/ubuntu', 'ghcr.io/library/ubuntu'],
    ['ubuntu', 'ubuntu', 'ubuntu'],
  ])('shortens %s to %s', (input, name, text) => {
    const named = parse(input);
    expect(familiarName(named)).toBe(name);
    expect(familiarString(named)).toBe(text);
    // The familiar form must denote the same repository again.
    expect(parseNormalizedNamed(text).toString()).toBe(parseNormalizedNamed(input).toString());
    expect(isTagged(named) || isCanonical(named) || named.kind === 'repository').toBe(true);
  });
});
