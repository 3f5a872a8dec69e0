/**
 * Typed parse errors. Each carries the OCI error code a registry answers with, so the HTTP layer
 * maps them without knowing this library (it duck-types `ociCode`, `message` and `detail`).
 */

/** A value that survives `JSON.stringify` unchanged; the shape of an error's `detail`. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Machine-readable context attached to an error; safe to put in an OCI error body. */
export type ErrorDetail = { readonly [key: string]: JsonValue };

/** Longest piece of client input echoed back in a message or detail. */
const ECHO_LIMIT = 100;

/**
 * Shortens client-supplied text before it is echoed in an error, so a hostile payload cannot
 * blow up logs or error bodies.
 */
export function excerpt(text: string): string {
  return text.length <= ECHO_LIMIT ? text : `${text.slice(0, ECHO_LIMIT)}…`;
}

/** The OCI error codes a reference problem can turn into. */
export type ReferenceOciCode = 'NAME_INVALID' | 'TAG_INVALID' | 'DIGEST_INVALID';

/** The longest repository name (domain and path together) this library accepts. */
export const REPOSITORY_NAME_MAX_LENGTH = 255;

/** The longest tag the grammar allows. */
export const TAG_MAX_LENGTH = 128;

/**
 * Base of every error this library throws; `instanceof ReferenceParseError` catches them all.
 * `detail` names the offending value (`{ name }`, `{ tag }`, `{ digest }` or `{ reference }`);
 * a {@link DigestInvalidError} raised for content that does not match may carry other fields.
 * Not abstract, so that `expect(...).toThrow(ReferenceParseError)` type-checks; the library
 * itself only throws the subclasses.
 */
export class ReferenceParseError extends Error {
  override readonly name: string = 'ReferenceParseError';

  constructor(
    /** The OCI error code a registry should answer with. */
    readonly ociCode: ReferenceOciCode,
    summary: string,
    /** JSON-able context naming the offending value. */
    readonly detail?: ErrorDetail,
    reason?: string,
  ) {
    super(reason ? `${summary}: ${reason}` : summary);
  }
}

/** The string is not a reference at all (bad characters, empty or doubled separators...). */
export class ReferenceInvalidFormatError extends ReferenceParseError {
  override readonly name: string = 'ReferenceInvalidFormatError';

  constructor(reference: string, reason?: string) {
    super('NAME_INVALID', 'invalid reference format', { reference }, reason);
  }
}

/** A name was required in its canonical (fully qualified) form and was given otherwise. */
export class NameNotCanonicalError extends ReferenceParseError {
  override readonly name: string = 'NameNotCanonicalError';

  constructor(value: string, reason?: string) {
    super('NAME_INVALID', 'repository name must be canonical', { name: value }, reason);
  }
}

/** The repository path would be valid if it were lower case. */
export class NameContainsUppercaseError extends ReferenceParseError {
  override readonly name: string = 'NameContainsUppercaseError';

  constructor(value: string, reason?: string) {
    super('NAME_INVALID', 'repository name must be lowercase', { name: value }, reason);
  }
}

/** The name (domain and path) is longer than {@link REPOSITORY_NAME_MAX_LENGTH}. */
export class NameTooLongError extends ReferenceParseError {
  override readonly name: string = 'NameTooLongError';

  constructor(value: string, reason?: string) {
    super(
      'NAME_INVALID',
      `repository name must not be more than ${REPOSITORY_NAME_MAX_LENGTH} characters`,
      { name: value },
      reason,
    );
  }
}

/** The name is empty. */
export class NameEmptyError extends ReferenceParseError {
  override readonly name: string = 'NameEmptyError';

  constructor(reason?: string) {
    super('NAME_INVALID', 'repository name must have at least one component', { name: '' }, reason);
  }
}

/** The tag does not match `[\w][\w.-]{0,127}`. */
export class TagInvalidError extends ReferenceParseError {
  override readonly name: string = 'TagInvalidError';

  constructor(tag: string, reason?: string) {
    super('TAG_INVALID', 'invalid tag format', { tag }, reason);
  }
}

/**
 * DIGEST_INVALID, the one error for a bad digest: malformed (grammar, length, not lower-case
 * hex), or well formed but contradicted by the content it names (an upload, a manifest body,
 * a descriptor's embedded data). `detail.digest` carries (an excerpt of) the digest when one
 * was given. The message defaults to the distribution spec's wording for a content mismatch.
 */
export class DigestInvalidError extends ReferenceParseError {
  override readonly name: string = 'DigestInvalidError';

  constructor(message = 'provided digest did not match uploaded content', detail?: ErrorDetail) {
    super('DIGEST_INVALID', message, detail);
  }
}

/**
 * A digest that follows the grammar but names an algorithm this registry does not verify (only
 * sha256 and sha512 are). Still DIGEST_INVALID, and a {@link DigestInvalidError}, so whoever
 * handles bad digests handles this one too; `algorithm` is the refused algorithm.
 */
export class DigestUnsupportedError extends DigestInvalidError {
  override readonly name: string = 'DigestUnsupportedError';

  constructor(
    readonly algorithm: string,
    detail?: ErrorDetail,
  ) {
    super(`unsupported digest algorithm "${excerpt(algorithm)}" (supported: sha256, sha512)`, detail);
  }
}
