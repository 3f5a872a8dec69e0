import { digestRegExp } from './grammar';
import { DigestInvalidError, DigestUnsupportedError, excerpt } from './reference.error';

/*
 * The one digest parser. The grammar (`digestRegExp`, OCI image-spec descriptor.md) decides
 * what looks like a digest; this file decides which of those a registry accepts. A string that
 * fits the grammar but names another algorithm is "unsupported"; anything else that is not a
 * strict sha256/sha512 digest, including a registered algorithm with a badly encoded value, is
 * "invalid".
 */

/** The digest algorithms a registry can verify; the OCI image-spec registers exactly these. */
export type DigestAlgorithm = 'sha256' | 'sha512';

/** Hex length of each supported algorithm's encoded part. */
const ENCODED_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** The supported digest algorithms, sha256 (the default) first. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = Object.freeze(['sha256', 'sha512'] as const);

/** Longer than any supported digest; longer input is refused before any regular expression. */
const MAX_DIGEST_LENGTH = 256;

/** A validated digest; `toString()` (and `toJSON()`) give back the canonical `algorithm:encoded`. */
export interface Digest {
  /** The hash algorithm. */
  readonly algorithm: DigestAlgorithm;
  /** Lower-case hex, of the algorithm's exact length. */
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

/** Why a value is not a supported digest; an object, not an Error, so a boolean check stays cheap. */
export interface DigestProblem {
  readonly reason: string;
  /** Set when the value is well formed but names an algorithm other than sha256/sha512. */
  readonly unsupportedAlgorithm?: string;
}

/** True for the algorithms {@link parseDigest} accepts. Never throws. */
export function isSupportedDigestAlgorithm(algorithm: unknown): algorithm is DigestAlgorithm {
  return typeof algorithm === 'string' && Object.prototype.hasOwnProperty.call(ENCODED_LENGTH, algorithm);
}

function examine(value: unknown): Digest | DigestProblem {
  if (typeof value !== 'string') return { reason: 'a digest must be a string' };
  if (value.length > MAX_DIGEST_LENGTH) return { reason: `longer than ${MAX_DIGEST_LENGTH} characters` };
  const groups = digestRegExp.exec(value)?.groups;
  if (!groups) return { reason: 'expected algorithm:encoded' };
  const { algorithm, encoded } = groups;
  if (!isSupportedDigestAlgorithm(algorithm)) {
    return { reason: `unsupported algorithm "${excerpt(algorithm)}"`, unsupportedAlgorithm: algorithm };
  }
  const length = ENCODED_LENGTH[algorithm];
  if (encoded.length !== length) {
    return { reason: `${algorithm} needs ${length} hex characters, got ${encoded.length}` };
  }
  // Upper-case hex would give two spellings of one digest, hence two storage keys for one blob.
  if (!/^[a-f0-9]+$/.test(encoded)) return { reason: `${algorithm} must be lower-case hex` };
  return new ValidDigest(algorithm, encoded);
}

/**
 * The error for a value that is not a supported digest: {@link DigestUnsupportedError} when the
 * problem is the algorithm, else {@link DigestInvalidError}. `field` (a JSON path such as
 * `layers[0].digest`) is named in the message and as `detail.path`. Not exported from the library.
 */
export function digestError(value: unknown, problem: DigestProblem, field?: string): DigestInvalidError {
  const detail = { digest: typeof value === 'string' ? excerpt(value) : null, ...(field === undefined ? {} : { path: field }) };
  return problem.unsupportedAlgorithm !== undefined
    ? new DigestUnsupportedError(problem.unsupportedAlgorithm, detail)
    : new DigestInvalidError(`invalid digest${field === undefined ? '' : ` at ${field}`}: ${problem.reason}`, detail);
}

/**
 * The parsed digest, or the error saying why not: returned, so callers that only explain a
 * failure need no try/catch. Not exported from the library.
 */
export function checkDigest(value: unknown, field?: string): Digest | DigestInvalidError {
  const result = examine(value);
  return result instanceof ValidDigest ? result : digestError(value, result as DigestProblem, field);
}

/**
 * Parses `algorithm:encoded` strictly (sha256: 64, sha512: 128 lower-case hex characters).
 * `field`, when given, says where the digest was found (a JSON path such as `layers[0].digest`):
 * the error names it in its message and as `detail.path`.
 * @throws DigestUnsupportedError for a well-formed digest of an algorithm other than sha256/sha512.
 * @throws DigestInvalidError for anything else that is not a valid digest (grammar, length, hex).
 */
export function parseDigest(value: string, field?: string): Digest {
  const result = checkDigest(value, field);
  if (result instanceof DigestInvalidError) throw result;
  return result;
}

/** True when `value` is a string {@link parseDigest} accepts. Never throws. */
export function isValidDigest(value: unknown): value is string {
  return examine(value) instanceof ValidDigest;
}

/**
 * Checks `s` strictly, like {@link parseDigest}, for callers that keep the string.
 * @throws DigestInvalidError or DigestUnsupportedError, as {@link parseDigest}.
 */
export function assertDigest(s: string): void {
  parseDigest(s);
}

/**
 * True when both arguments are valid, supported digests naming the same content. An invalid
 * or unsupported argument makes the answer `false`; never throws.
 */
export function digestEquals(a: string | Digest, b: string | Digest): boolean {
  const left = examine(String(a));
  const right = examine(String(b));
  return left instanceof ValidDigest && right instanceof ValidDigest && String(left) === String(right);
}
