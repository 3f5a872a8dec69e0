/**
 * Typed parse errors. Each carries the OCI error code a registry answers with, so the HTTP layer
 * maps them without knowing this library (it duck-types `ociCode`, `message` and `detail`).
 */

/** The OCI error codes a reference problem can turn into. */
export type ReferenceOciCode = 'NAME_INVALID' | 'TAG_INVALID' | 'DIGEST_INVALID';

/** The longest repository name (domain and path together) this library accepts. */
export const REPOSITORY_NAME_MAX_LENGTH = 255;

/** The longest tag the grammar allows. */
export const TAG_MAX_LENGTH = 128;

/**
 * Base of every error this library throws; `instanceof ReferenceParseError` catches them all.
 * `detail` names the offending value (`{ name }`, `{ tag }`, `{ digest }` or `{ reference }`).
 * Not abstract, so that `expect(...).toThrow(ReferenceParseError)` type-checks; the library
 * itself only throws the subclasses.
 */
export class ReferenceParseError extends Error {
  override readonly name: string = 'ReferenceParseError';

  constructor(
    /** The OCI error code a registry should answer with. */
    readonly ociCode: ReferenceOciCode,
    summary: string,
    readonly detail: Readonly<Record<string, string>>,
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

/** The digest is malformed: bad grammar, wrong length, or not lower-case hex. */
export class DigestInvalidFormatError extends ReferenceParseError {
  override readonly name: string = 'DigestInvalidFormatError';

  constructor(digest: string, reason?: string) {
    super('DIGEST_INVALID', 'invalid digest format', { digest }, reason);
  }
}

/** The digest is well formed but its algorithm is not one this registry verifies. */
export class DigestUnsupportedError extends ReferenceParseError {
  override readonly name: string = 'DigestUnsupportedError';

  constructor(digest: string, reason?: string) {
    super('DIGEST_INVALID', 'unsupported digest algorithm', { digest }, reason);
  }
}
