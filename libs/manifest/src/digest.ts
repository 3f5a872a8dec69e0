import { createHash } from 'node:crypto';
import { DigestInvalidError, DigestUnsupportedError, ErrorDetail, excerpt } from './manifest.error';

/**
 * Digest grammar (OCI image-spec, descriptor.md):
 *
 *   digest                ::= algorithm ":" encoded
 *   algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
 *   algorithm-component   ::= [a-z0-9]+
 *   algorithm-separator   ::= [+._-]
 *   encoded               ::= [a-zA-Z0-9=_-]+
 *
 * A string that fits the grammar but names another algorithm is "unsupported"; anything else,
 * including a registered algorithm with a badly encoded value, is "invalid".
 */
const algorithmComponent = '[a-z0-9]+';
const algorithmSeparator = '[+._-]';
const algorithm = `${algorithmComponent}(?:${algorithmSeparator}${algorithmComponent})*`;
const encoded = '[a-zA-Z0-9=_-]+';
const DIGEST_GRAMMAR = new RegExp(`^(${algorithm}):(${encoded})$`);

/** Registered algorithms and the exact encoding each one requires. */
const ENCODINGS = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
} as const;

/** Longer than any supported digest; longer input is refused before any regular expression. */
const MAX_DIGEST_LENGTH = 256;

/** The digest algorithms Lading supports. */
export type DigestAlgorithm = keyof typeof ENCODINGS;

/** The supported digest algorithms, sha256 (the default) first. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha512'];

/** A validated digest; `toString()` (and `toJSON()`) give back the canonical `algorithm:encoded`. */
export interface Digest {
  /** The hash algorithm. */
  readonly algorithm: DigestAlgorithm;
  /** The lowercase hex value. */
  readonly encoded: string;
  /** The digest as `algorithm:encoded`. */
  toString(): string;
  /** Same as `toString()`, so a Digest serialises as its string. */
  toJSON(): string;
}

class ValidDigest implements Digest {
  constructor(
    readonly algorithm: DigestAlgorithm,
    readonly encoded: string,
  ) {
    Object.freeze(this);
  }

  toString(): string {
    return `${this.algorithm}:${this.encoded}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * Outcome of checking a digest string without throwing; shared by {@link parseDigest} and the
 * descriptor reader so both classify digests identically. Not exported from the library.
 */
export type DigestCheck =
  | { readonly ok: true; readonly digest: Digest }
  | { readonly ok: false; readonly unsupportedAlgorithm?: string; readonly reason: string };

/** Classifies `value` as a supported digest, an unsupported algorithm, or invalid. Never throws. */
export function checkDigest(value: unknown): DigestCheck {
  if (typeof value !== 'string') return { ok: false, reason: 'digest must be a string' };
  if (value.length > MAX_DIGEST_LENGTH) return { ok: false, reason: 'digest is too long' };
  const match = DIGEST_GRAMMAR.exec(value);
  if (match === null) return { ok: false, reason: 'digest must have the form algorithm:encoded' };
  const [, alg, hex] = match;
  if (!isSupportedAlgorithm(alg)) {
    return { ok: false, unsupportedAlgorithm: alg, reason: `unsupported digest algorithm "${alg}"` };
  }
  if (!ENCODINGS[alg].test(hex)) {
    const hexLength = alg === 'sha256' ? 64 : 128;
    return { ok: false, reason: `a ${alg} digest must be ${hexLength} lowercase hex characters` };
  }
  return { ok: true, digest: new ValidDigest(alg, hex) };
}

/**
 * Turns a failed {@link DigestCheck} into the typed error: {@link DigestUnsupportedError} for a
 * well-formed digest of another algorithm, else {@link DigestInvalidError}. `detail` is merged
 * into the error's detail. Not exported from the library.
 */
export function digestError(
  value: unknown,
  check: Extract<DigestCheck, { ok: false }>,
  detail?: ErrorDetail,
): DigestInvalidError {
  const shown = typeof value === 'string' ? excerpt(value) : null;
  if (check.unsupportedAlgorithm !== undefined) {
    return new DigestUnsupportedError(check.unsupportedAlgorithm, { digest: shown, ...detail });
  }
  const where = typeof detail?.path === 'string' ? ` at ${detail.path}` : '';
  return new DigestInvalidError(`invalid digest${where}: ${check.reason}`, {
    digest: shown,
    reason: check.reason,
    ...detail,
  });
}

/**
 * Parses `algorithm:encoded`. Throws {@link DigestUnsupportedError} for a well-formed digest of
 * an algorithm other than sha256/sha512, and {@link DigestInvalidError} for anything else that
 * is not a valid sha256 (64 lowercase hex) or sha512 (128 lowercase hex) digest.
 */
export function parseDigest(value: string): Digest {
  const check = checkDigest(value);
  if (!check.ok) throw digestError(value, check);
  return check.digest;
}

/** True when `value` is a string {@link parseDigest} would accept. Never throws. */
export function isDigest(value: unknown): value is string {
  return checkDigest(value).ok;
}

/**
 * True when both arguments are valid, supported digests naming the same content. An invalid
 * or unsupported argument makes the answer `false`; never throws.
 */
export function digestEquals(a: string | Digest, b: string | Digest): boolean {
  const left = checkDigest(String(a));
  const right = checkDigest(String(b));
  return left.ok && right.ok && left.digest.toString() === right.digest.toString();
}

/** True when `name` is one of {@link DIGEST_ALGORITHMS}. */
export function isSupportedAlgorithm(name: unknown): name is DigestAlgorithm {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(ENCODINGS, name);
}

/**
 * Throws {@link DigestUnsupportedError} unless `name` is a supported algorithm; guards callers
 * that are not type-checked. Not exported from the library.
 */
export function assertSupportedAlgorithm(name: unknown): asserts name is DigestAlgorithm {
  if (!isSupportedAlgorithm(name)) throw new DigestUnsupportedError(String(name));
}

/**
 * Digest of `bytes` as `algorithm:hex` (sha256 by default). Throws
 * {@link DigestUnsupportedError} for an algorithm other than sha256/sha512.
 */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  assertSupportedAlgorithm(algorithm);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
