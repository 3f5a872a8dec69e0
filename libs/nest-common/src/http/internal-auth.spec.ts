import { signInternalRequest, verifyInternalRequest, type SignedRequestParts } from './internal-auth';

describe('internal request signatures', () => {
  const secret = 'a-very-secret-shared-key';
  const now = 1_700_000_000_000;
  const parts: SignedRequestParts = { method: 'PUT', url: '/v2/a/manifests/x', scope: 'c2NvcGU' };
  const sig = signInternalRequest(secret, parts, now);

  it('accepts a fresh signature over the same request', () => {
    expect(verifyInternalRequest(secret, sig, parts, now + 1000)).toBe(true);
  });
  it.each([
    ['another method', { ...parts, method: 'GET' }, now, secret],
    ['another path', { ...parts, url: '/v2/b/manifests/x' }, now, secret],
    ['another scope', { ...parts, scope: 'b3RoZXI' }, now, secret],
    ['a stale timestamp', parts, now + 3_600_000, secret],
    ['another secret', parts, now, 'another-secret-key-xx'],
  ])('refuses %s', (_what, p, at, key) => {
    expect(verifyInternalRequest(key, sig, p, at)).toBe(false);
  });
  it.each([undefined, '', 'garbage', '123.', '.abc'])('refuses header %p', (h) => {
    expect(verifyInternalRequest(secret, h, parts, now)).toBe(false);
  });
});
