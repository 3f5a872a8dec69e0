import * as manifest from '@lading/manifest';
import * as reference from '@lading/reference';
import {
  BlobUnknownError,
  DigestInvalidError,
  ManifestInvalidError,
  isOciCoded,
  ociErrorBody,
  ociErrorStatus,
  type OciCoded,
} from './index';

describe('OCI-coded errors', () => {
  it('re-exports the domain libs\' DigestInvalidError and ManifestInvalidError, not copies', () => {
    expect(DigestInvalidError).toBe(reference.DigestInvalidError);
    expect(DigestInvalidError).toBe(manifest.DigestInvalidError);
    expect(ManifestInvalidError).toBe(manifest.ManifestInvalidError);
  });

  // The filter calls exactly these three functions; a pure lib's error needs no base class here.
  it.each<[string, unknown, string, number, unknown]>([
    ['a registry error', new BlobUnknownError('sha256:x'), 'BLOB_UNKNOWN', 404, { digest: 'sha256:x' }],
    ['a content mismatch', new DigestInvalidError(undefined, { expected: 'a', actual: 'b' }), 'DIGEST_INVALID', 400, { expected: 'a', actual: 'b' }],
    ['a malformed digest', captureError(() => reference.parseDigest('sha256:x')), 'DIGEST_INVALID', 400, { digest: 'sha256:x' }],
    ['an unsupported digest', captureError(() => manifest.parseDigest('md5:x')), 'DIGEST_INVALID', 400, { digest: 'md5:x' }],
    ['a bad tag', new reference.TagInvalidError('-x'), 'TAG_INVALID', 400, { tag: '-x' }],
    ['an invalid manifest', new ManifestInvalidError(), 'MANIFEST_INVALID', 400, null],
    ['a manifest over the limit', new manifest.ManifestTooLargeError(5, 4), 'SIZE_INVALID', 413, { size: 5, limit: 4 }],
  ])('maps %s', (_name, error, code, status, detail) => {
    expect(isOciCoded(error)).toBe(true);
    expect(ociErrorStatus(error as OciCoded)).toBe(status);
    expect(ociErrorBody(error as OciCoded).errors[0]).toMatchObject({ code, detail });
  });

  it('does not take a plain Error for an OCI-coded one', () => {
    expect(isOciCoded(new Error('boom'))).toBe(false);
  });
});

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
