import { digestRegExp } from './grammar';
import { DigestInvalidFormatError, DigestUnsupportedError, ReferenceParseError } from './reference.error';

/** The digest algorithms a registry can verify; the OCI image-spec registers exactly these. */
export type DigestAlgorithm = 'sha256' | 'sha512';

/** Hex length of each supported algorithm's encoded part. */
const ENCODED_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** A digest split into its parts, already checked strictly. */
export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  /** Lower-case hex, of the algorithm's exact length. */
  readonly encoded: string;
}

/** True for the algorithms {@link parseDigest} accepts. */
export function isSupportedDigestAlgorithm(algorithm: string): algorithm is DigestAlgorithm {
  return Object.prototype.hasOwnProperty.call(ENCODED_LENGTH, algorithm);
}

/** The parsed digest, or the error saying why not: returned, so the boolean check needs no try/catch. */
export function checkDigest(s: string): ReferenceParseError | ParsedDigest {
  const groups = digestRegExp.exec(s)?.groups;
  if (!groups) {
    return new DigestInvalidFormatError(s, 'expected algorithm:encoded');
  }
  const { algorithm, encoded } = groups;
  if (!isSupportedDigestAlgorithm(algorithm)) {
    return new DigestUnsupportedError(s, `algorithm "${algorithm}" is not one of sha256, sha512`);
  }
  const length = ENCODED_LENGTH[algorithm];
  if (encoded.length !== length) {
    return new DigestInvalidFormatError(s, `${algorithm} needs ${length} hex characters, got ${encoded.length}`);
  }
  // Upper-case hex would give two spellings of one digest, hence two storage keys for one blob.
  if (!/^[a-f0-9]+$/.test(encoded)) {
    return new DigestInvalidFormatError(s, `${algorithm} must be lower-case hex`);
  }
  return { algorithm, encoded };
}

/**
 * Splits a digest into algorithm and encoded part after checking it strictly (sha256: 64, sha512:
 * 128 lower-case hex characters).
 * @throws DigestInvalidFormatError when the grammar, the length or the hex is wrong.
 * @throws DigestUnsupportedError when the algorithm matches the grammar but is not supported.
 */
export function parseDigest(s: string): ParsedDigest {
  const result = checkDigest(s);
  if (result instanceof ReferenceParseError) {
    throw result;
  }
  return result;
}

/** True when `s` is a digest {@link parseDigest} accepts. Never throws. */
export function isValidDigest(s: string): boolean {
  return !(checkDigest(s) instanceof ReferenceParseError);
}

/**
 * Checks `s` strictly, like {@link parseDigest}, for callers that keep the string.
 * @throws DigestInvalidFormatError or DigestUnsupportedError, as {@link parseDigest}.
 */
export function assertDigest(s: string): void {
  parseDigest(s);
}
