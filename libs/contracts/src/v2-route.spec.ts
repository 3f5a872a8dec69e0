import { parseV2Path, serviceOf } from './v2-route';

describe('parseV2Path', () => {
  it.each([
    ['/v2/', { kind: 'base' }],
    ['/v2', { kind: 'base' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/a/tags/list', { kind: 'tags', name: 'a' }],
    ['/v2/a/b/c/tags/list', { kind: 'tags', name: 'a/b/c' }],
    ['/v2/a/manifests/latest', { kind: 'manifest', name: 'a', reference: 'latest' }],
    ['/v2/x/manifests/manifests/v1', { kind: 'manifest', name: 'x/manifests', reference: 'v1' }],
    ['/v2/a/b/blobs/sha256:abc', { kind: 'blob', name: 'a/b', digest: 'sha256:abc' }],
    ['/v2/a/blobs/uploads/', { kind: 'upload-start', name: 'a' }],
    ['/v2/a/blobs/uploads', { kind: 'upload-start', name: 'a' }],
    ['/v2/a/blobs/uploads/123-abc', { kind: 'upload', name: 'a', uploadId: '123-abc' }],
    ['/v2/foo/blobs/blobs/uploads/', { kind: 'upload-start', name: 'foo/blobs' }],
    // `uploads` must be a whole segment: glued to more characters it is a (bad) blob digest.
    ['/v2/r/blobs/uploadsXYZ', { kind: 'blob', name: 'r', digest: 'uploadsXYZ' }],
    ['/v2/r/blobs/uploads-0a1b', { kind: 'blob', name: 'r', digest: 'uploads-0a1b' }],
    ['/v2/r/blobs/uploads%2Fx', { kind: 'blob', name: 'r', digest: 'uploads/x' }],
    ['/v2/a/referrers/sha256:abc', { kind: 'referrers', name: 'a', digest: 'sha256:abc' }],
    ['/v2/a/manifests/sha256%3Aabc', { kind: 'manifest', name: 'a', reference: 'sha256:abc' }],
  ])('parses %s', (path, expected) => {
    expect(parseV2Path(path)).toEqual(expected);
  });

  it.each([
    '/v1/',
    '/v2/a',
    '/v2/a/blobs/',
    '/v2/a/manifests/',
    '/v2/a/unknown/x',
    '/',
    '/v2/a/tags/list/x',
    '/v2/r/blobs/uploadsXYZ/',
    '/v2/r/blobs/uploads/a/b',
  ])('refuses %s', (path) => {
    expect(parseV2Path(path)).toBeNull();
  });

  it('routes blobs and uploads to blob-upload, the rest to manifests', () => {
    expect(serviceOf({ kind: 'upload', name: 'a', uploadId: 'x' })).toBe('blob-upload');
    expect(serviceOf({ kind: 'blob', name: 'a', digest: 'x' })).toBe('blob-upload');
    expect(serviceOf({ kind: 'tags', name: 'a' })).toBe('manifests');
    expect(serviceOf({ kind: 'catalog' })).toBe('manifests');
  });
});
