import { domainRegExp, pathRegExp, tagRegExp } from './grammar';
import {
  NameContainsUppercaseError,
  NameEmptyError,
  NameTooLongError,
  REPOSITORY_NAME_MAX_LENGTH,
  ReferenceInvalidFormatError,
  ReferenceParseError,
  TAG_MAX_LENGTH,
  TagInvalidError,
} from './reference.error';

/*
 * Each rule is written once as a `check*` function that returns the error instead of throwing
 * it; the boolean and the asserting forms (and `parse`) are thin wrappers over it.
 */

const PATH_RULE = 'path components are lower-case letters and digits joined by ".", "_", "__" or "-", separated by "/"';

/** The error explaining why `path` is not a repository path, or `undefined` when it is one. */
export function checkRepositoryName(path: string): ReferenceParseError | undefined {
  if (path === '') {
    return new NameEmptyError();
  }
  if (!pathRegExp.test(path)) {
    const lower = path.toLowerCase();
    return lower !== path && pathRegExp.test(lower)
      ? new NameContainsUppercaseError(path)
      : new ReferenceInvalidFormatError(path, PATH_RULE);
  }
  return checkNameLength(path);
}

/** The error for a name (domain and path) over the limit, or `undefined`. */
export function checkNameLength(name: string): NameTooLongError | undefined {
  return name.length > REPOSITORY_NAME_MAX_LENGTH ? new NameTooLongError(name, `got ${name.length}`) : undefined;
}

/** The error explaining why `tag` is not a tag, or `undefined` when it is one. */
export function checkTag(tag: string): TagInvalidError | undefined {
  if (tagRegExp.test(tag)) {
    return undefined;
  }
  if (tag === '') {
    return new TagInvalidError(tag, 'tag must not be empty');
  }
  if (tag.length > TAG_MAX_LENGTH) {
    return new TagInvalidError(tag, `tag must not be more than ${TAG_MAX_LENGTH} characters, got ${tag.length}`);
  }
  return new TagInvalidError(
    tag,
    'a tag starts with a letter, digit or "_" and continues with letters, digits, "_", "." or "-"',
  );
}

/**
 * True when `path` is a valid repository path as it appears in `/v2/<name>/...`: no domain,
 * lower case, at most {@link REPOSITORY_NAME_MAX_LENGTH} characters. Never throws.
 */
export function isValidRepositoryName(path: string): boolean {
  return checkRepositoryName(path) === undefined;
}

/**
 * Checks a repository path (no domain) the way {@link isValidRepositoryName} does.
 * @throws NameEmptyError for `""`; NameContainsUppercaseError when only case is wrong;
 *   ReferenceInvalidFormatError for any other grammar problem; NameTooLongError over 255.
 */
export function assertRepositoryName(path: string): void {
  const error = checkRepositoryName(path);
  if (error) {
    throw error;
  }
}

/** True when `tag` matches `[\w][\w.-]{0,127}`. Never throws. */
export function isValidTag(tag: string): boolean {
  return checkTag(tag) === undefined;
}

/**
 * Checks a tag the way {@link isValidTag} does.
 * @throws TagInvalidError, whose message says whether it was empty, too long or badly spelled.
 */
export function assertTag(tag: string): void {
  const error = checkTag(tag);
  if (error) {
    throw error;
  }
}

/**
 * True when `domain` is a registry host with optional port: a domain name or IPv4 address
 * (`registry.example.com`, `localhost:5000`, `10.0.0.1:80`) or a bracketed IPv6 address
 * (`[::1]:5000`). Never throws.
 */
export function isValidDomain(domain: string): boolean {
  return domainRegExp.test(domain);
}
