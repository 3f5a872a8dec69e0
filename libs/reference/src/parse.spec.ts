import {
  DigestInvalidError,
  DigestUnsupportedError,
  NameContainsUppercaseError,
  NameEmptyError,
  NameTooLongError,
  ReferenceInvalidFormatError,
  ReferenceParseError,
  TagInvalidError,
  isCanonical,
  isTagged,
  parse,
} from './index';

const SHA256 = `sha256:${'f'.repeat(64)}`;
const SHA512 = `sha512:${'f'.repeat(128)}`;

type ErrorClass = new (...args: never[]) => ReferenceParseError;

describe('parse', () => {
  // input, domain, path, tag, digest
  const valid = (
    [
      ['test_com', '', 'test_com'],
      ['test.com:tag', '', 'test.com', 'tag'],
      ['test.com:5000', '', 'test.com', '5000'],
      ['test.com/repo:tag', 'test.com', 'repo', 'tag'],
      ['test:5000/repo', 'test:5000', 'repo'],
      ['test:5000/repo:tag', 'test:5000', 'repo', 'tag'],
      [`test:5000/repo@${SHA256}`, 'test:5000', 'repo', undefined, SHA256],
      [`test:5000/repo:tag@${SHA256}`, 'test:5000', 'repo', 'tag', SHA256],
      ['lowercase:Uppercase', '', 'lowercase', 'Uppercase'],
      [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, 'a', `${'a/'.repeat(126)}a`, 'tag-puts-this-over-max'],
      ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux'],
      ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag'],
      ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', 'test.example.com'],
      ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com'],
      [`xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`, 'xn--7o8h.com', 'myimage', 'xn--7o8h.com', SHA512],
      ['foo_bar.com:8080', '', 'foo_bar.com', '8080'],
      ['foo/foo_bar.com:8080', 'foo', 'foo_bar.com', '8080'],
      ['192.168.1.1', '', '192.168.1.1'],
      ['192.168.1.1:tag', '', '192.168.1.1', 'tag'],
      ['192.168.1.1:5000', '', '192.168.1.1', '5000'],
      ['192.168.1.1/repo', '192.168.1.1', 'repo'],
      ['192.168.1.1:5000/repo', '192.168.1.1:5000', 'repo'],
      ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050'],
      ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo'],
      ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag'],
      ['[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo'],
      ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000', 'repo', 'tag'],
      [`[2001:db8::1]:5000/repo@${SHA256}`, '[2001:db8::1]:5000', 'repo', undefined, SHA256],
      [`[2001:db8::1]:5000/repo:tag@${SHA256}`, '[2001:db8::1]:5000', 'repo', 'tag', SHA256],
      ['[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo'],
      ['[::1]:5000/repo', '[::1]:5000', 'repo'],
      ['localhost/foo', 'localhost', 'foo'],
      ['localhost:5000/foo/bar:v1', 'localhost:5000', 'foo/bar', 'v1'],
      ['Uppercase/lowercase:tag', 'Uppercase', 'lowercase', 'tag'],
      ['REGISTRY.Example.COM:443/team/app', 'REGISTRY.Example.COM:443', 'team/app'],
      ['a__b/c---d/e.f', '', 'a__b/c---d/e.f'],
      ['a-b-c/x', 'a-b-c', 'x'],
      ['a', '', 'a'],
      ['repo:_underscore-start', '', 'repo', '_underscore-start'],
      [`repo:${'t'.repeat(128)}`, '', 'repo', 't'.repeat(128)],
      ['a'.repeat(255), '', 'a'.repeat(255)],
      [`x.io/${'a'.repeat(250)}`, 'x.io', 'a'.repeat(250)],
      [`repo@${SHA256}`, '', 'repo', undefined, SHA256],
      ['library/ubuntu:22.04', 'library', 'ubuntu', '22.04'],
      ['docker.io/library/ubuntu', 'docker.io', 'library/ubuntu'],
      ['ex.com:5000/a.b_c__d-e--f/g:1.0.0-rc.1', 'ex.com:5000', 'a.b_c__d-e--f/g', '1.0.0-rc.1'],
    ] satisfies Array<[string, string, string, string?, string?]>
  ).map(([input, domain, path, tag, digest]) => ({
    input,
    domain,
    path,
    tag,
    digest,
  }));

  it.each(valid)('accepts $input', ({ input, domain, path, tag, digest }) => {
    const ref = parse(input);
    expect(ref.domain).toBe(domain);
    expect(ref.path).toBe(path);
    expect(ref.name).toBe(domain === '' ? path : `${domain}/${path}`);
    expect(isTagged(ref) ? ref.tag : undefined).toBe(tag);
    expect(isCanonical(ref) ? ref.digest : undefined).toBe(digest);
    expect(ref.toString()).toBe(input);
    expect(parse(ref.toString())).toEqual(ref);
  });

  // input, expected error class, expected OCI code
  const invalid: Array<[string, ErrorClass, string]> = [
    ['', NameEmptyError, 'NAME_INVALID'],
    [':justtag', ReferenceInvalidFormatError, 'NAME_INVALID'],
    [`@${SHA256}`, ReferenceInvalidFormatError, 'NAME_INVALID'],
    [`repo@sha256:${'f'.repeat(34)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`validname@invaliddigest:${'f'.repeat(64)}`, DigestUnsupportedError, 'DIGEST_INVALID'],
    ['Uppercase:tag', NameContainsUppercaseError, 'NAME_INVALID'],
    ['test:5000/Uppercase/lowercase:tag', NameContainsUppercaseError, 'NAME_INVALID'],
    ['Foo.com/Bar', NameContainsUppercaseError, 'NAME_INVALID'],
    ['foo/Bar:Tag', NameContainsUppercaseError, 'NAME_INVALID'],
    [`${'a/'.repeat(128)}a:tag`, NameTooLongError, 'NAME_INVALID'],
    ['a'.repeat(256), NameTooLongError, 'NAME_INVALID'],
    [`x.io/${'a'.repeat(251)}`, NameTooLongError, 'NAME_INVALID'],
    ['aa/asdf$$^/aa', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[2001:db8::1]', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[2001:db8::1]:5000', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[2001:db8::1]:tag', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[fe80::1%eth0]:5000/repo', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[fe80::1%@invalidzone]:5000/repo', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['[2001:db8:3:4::192.0.2.33]:5000/debian', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['fc00::1:5000/debian', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a..b', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a//b', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['docker///docker', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a-', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a/', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a/b/', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['/a', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['-a', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['-docker.io/docker/docker', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['_docker/_docker', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a_.b', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['a___b', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['https://github.com/docker/docker', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['repo name', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['ex.com:port/repo', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['ex.com:/repo', ReferenceInvalidFormatError, 'NAME_INVALID'],
    ['repo:', TagInvalidError, 'TAG_INVALID'],
    ['repo:-tag', TagInvalidError, 'TAG_INVALID'],
    ['repo:.tag', TagInvalidError, 'TAG_INVALID'],
    [`repo:${'t'.repeat(129)}`, TagInvalidError, 'TAG_INVALID'],
    ['repo:ta!g', TagInvalidError, 'TAG_INVALID'],
    ['localhost:5000/repo:a:b', TagInvalidError, 'TAG_INVALID'],
    [`repo@sha256:${'F'.repeat(64)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@sha256:${'f'.repeat(63)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@sha256:${'f'.repeat(65)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@sha512:${'f'.repeat(64)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@sha256:${'g'.repeat(64)}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@SHA256:${'f'.repeat(64)}`, DigestInvalidError, 'DIGEST_INVALID'],
    ['repo@sha256', DigestInvalidError, 'DIGEST_INVALID'],
    ['repo@', DigestInvalidError, 'DIGEST_INVALID'],
    ['repo:tag@', DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@${SHA256}@${SHA256}`, DigestInvalidError, 'DIGEST_INVALID'],
    [`repo@md5:${'f'.repeat(32)}`, DigestUnsupportedError, 'DIGEST_INVALID'],
    [`repo@sha384:${'f'.repeat(96)}`, DigestUnsupportedError, 'DIGEST_INVALID'],
  ];

  it.each(invalid)('refuses %j with %p', (input, errorClass, ociCode) => {
    let caught: unknown;
    try {
      parse(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(errorClass);
    expect(caught).toBeInstanceOf(ReferenceParseError);
    expect(caught).toMatchObject({ ociCode, name: errorClass.name });
    expect((caught as Error).message).not.toBe('');
  });

  it('names the offending part of the input in the error detail', () => {
    expect(() => parse('Foo:Bar')).toThrow(expect.objectContaining({ detail: { name: 'Foo' } }));
    expect(() => parse('repo:-x')).toThrow(expect.objectContaining({ detail: { tag: '-x' } }));
    expect(() => parse('repo@md5:abc')).toThrow(expect.objectContaining({ detail: { digest: 'md5:abc' } }));
  });

  it('says in the message why an unsupported digest was refused', () => {
    expect(() => parse(`repo@md5:${'f'.repeat(32)}`)).toThrow(/unsupported digest algorithm.*md5/);
  });

  // JavaScript regular expressions backtrack; these inputs would hang a careless grammar.
  it.each([
    ['a long run of dashes', `a${'-'.repeat(50_000)}!`],
    ['a long domain-like prefix', `${'a-'.repeat(25_000)}/x!`],
    ['many short components', `${'a.'.repeat(25_000)}a:!`],
    ['many separators', `${'a_'.repeat(25_000)}`],
  ])('refuses %s in linear time', (_label, input) => {
    const started = Date.now();
    expect(() => parse(input)).toThrow(ReferenceParseError);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
