import { signInternalRequest, verifyInternalRequest } from './internal-auth';

describe('internal request signatures', () => {
  const secret = 'a-very-secret-shared-key';
  const now = 1_700_000_000_000;
  const sig = signInternalRequest(secret, 'PUT', '/v2/a/manifests/x', 'alice', now);

  it('accepts a fresh signature over the same request', () => {
    expect(verifyInternalRequest(secret, sig, 'PUT', '/v2/a/manifests/x', 'alice', now + 1000)).toBe(true);
  });
  it.each([
    ['another method', 'GET', '/v2/a/manifests/x', 'alice', now, secret],
    ['another path', 'PUT', '/v2/b/manifests/x', 'alice', now, secret],
    ['another principal', 'PUT', '/v2/a/manifests/x', 'mallory', now, secret],
    ['a stale timestamp', 'PUT', '/v2/a/manifests/x', 'alice', now + 3_600_000, secret],
    ['another secret', 'PUT', '/v2/a/manifests/x', 'alice', now, 'another-secret-key-xx'],
  ])('refuses %s', (_what, method, url, principal, at, key) => {
    expect(verifyInternalRequest(key, sig, method, url, principal, at)).toBe(false);
  });
  it.each([undefined, '', 'garbage', '123.', '.abc'])('refuses header %p', (h) => {
    expect(verifyInternalRequest(secret, h, 'PUT', '/v2/a/manifests/x', 'alice', now)).toBe(false);
  });
});
