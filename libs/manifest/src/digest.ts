import { createHash } from 'node:crypto';
import { DigestUnsupportedError, isSupportedDigestAlgorithm, type DigestAlgorithm } from '@lading/reference';

/*
 * Computing digests. Parsing and validating them (`parseDigest`, `DigestInvalidError`…) is the
 * reference grammar's job and lives in `@lading/reference`; this library re-exports it.
 */

/**
 * Throws {@link DigestUnsupportedError} unless `name` is a supported algorithm; guards callers
 * that are not type-checked. Not exported from the library.
 */
export function assertSupportedAlgorithm(name: unknown): asserts name is DigestAlgorithm {
  if (!isSupportedDigestAlgorithm(name)) throw new DigestUnsupportedError(String(name));
}

/**
 * Digest of `bytes` as `algorithm:hex` (sha256 by default). Throws
 * {@link DigestUnsupportedError} for an algorithm other than sha256/sha512.
 */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  assertSupportedAlgorithm(algorithm);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
