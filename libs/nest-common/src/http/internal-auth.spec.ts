import { signInternalRequest, signedPartsOf, verifyInternalRequest, type SignedRequestParts } from './internal-auth';

describe('internal request signatures', () => {
  const secret = 'a-very-secret-shared-key';
  const now = 1_700_000_000_000;
  const nonce = 'n0nce-of-22-characters';
  const parts: SignedRequestParts = {
    method: 'PUT',
    url: '/v2/a/manifests/x',
    scope: 'c2NvcGU',
    contentLength: '512',
    contentType: 'application/vnd.oci.image.manifest.v1+json',
    chunked: false,
  };
  const sig = signInternalRequest(secret, parts, { now, nonce });

  it('accepts a fresh signature over the same request and gives its nonce and time', () => {
    expect(verifyInternalRequest(secret, sig, parts, now + 1000)).toEqual({ issuedAt: now, nonce });
  });
  it('signs with a new random nonce each time', () => {
    const a = signInternalRequest(secret, parts, { now }).split('.')[1];
    const b = signInternalRequest(secret, parts, { now }).split('.')[1];
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[\w-]{22}$/);
  });
  it.each([
    ['another method', { ...parts, method: 'GET' }, now, secret],
    ['another path', { ...parts, url: '/v2/b/manifests/x' }, now, secret],
    ['another scope', { ...parts, scope: 'b3RoZXI' }, now, secret],
    ['another body length', { ...parts, contentLength: '513' }, now, secret],
    ['another body type', { ...parts, contentType: 'application/json' }, now, secret],
    ['a chunked body', { ...parts, chunked: true }, now, secret],
    ['a stale timestamp', parts, now + 3_600_000, secret],
    ['another secret', parts, now, 'another-secret-key-xx'],
  ])('refuses %s', (_what, p, at, key) => {
    expect(verifyInternalRequest(key, sig, p, at)).toBeUndefined();
  });
  it('refuses another nonce under the same MAC', () => {
    const [ts, , hmac] = sig.split('.');
    expect(verifyInternalRequest(secret, `${ts}.another-nonce-of-22ch.${hmac}`, parts, now)).toBeUndefined();
  });
  it.each([undefined, '', 'garbage', '123.', '.abc', '1.2.3.4', `${now}..abc`, `x${now}.${nonce}.abc`])('refuses header %p', (h) => {
    expect(verifyInternalRequest(secret, h, parts, now)).toBeUndefined();
  });

  it('reads the signed parts from headers: no length is 0, no type is empty', () => {
    expect(signedPartsOf('DELETE', '/v2/a/manifests/x', 's', {}, false)).toEqual({
      method: 'DELETE',
      url: '/v2/a/manifests/x',
      scope: 's',
      contentLength: '0',
      contentType: '',
      chunked: false,
    });
    expect(signedPartsOf('PATCH', '/u', 's', { 'content-type': 'application/octet-stream' }, true)).toMatchObject({
      contentLength: '0',
      contentType: 'application/octet-stream',
      chunked: true,
    });
  });
});
