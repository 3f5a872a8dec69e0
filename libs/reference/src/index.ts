/**
 * Image references (`[domain[:port]/]path[:tag][@digest]`): grammar, parsing, docker-style
 * normalisation, and the validators a registry applies to names, tags and digests, including
 * the one digest parser (`parseDigest`) and the one `DigestInvalidError`. Pure: no I/O, and it
 * imports no other lib (`@lading/manifest` builds on it, not the other way round).
 */
export {
  grammar,
  referenceRegExp,
  nameRegExp,
  pathRegExp,
  domainRegExp,
  tagRegExp,
  digestRegExp,
  identifierRegExp,
} from './grammar';
export {
  ReferenceParseError,
  ReferenceInvalidFormatError,
  NameNotCanonicalError,
  NameContainsUppercaseError,
  NameTooLongError,
  NameEmptyError,
  TagInvalidError,
  DigestInvalidError,
  DigestUnsupportedError,
  REPOSITORY_NAME_MAX_LENGTH,
  TAG_MAX_LENGTH,
  excerpt,
} from './reference.error';
export type { ErrorDetail, JsonValue, ReferenceOciCode } from './reference.error';
export {
  DIGEST_ALGORITHMS,
  parseDigest,
  isValidDigest,
  assertDigest,
  isSupportedDigestAlgorithm,
  digestEquals,
} from './digest';
export type { Digest, DigestAlgorithm } from './digest';
export { isValidRepositoryName, assertRepositoryName, isValidTag, assertTag, isValidDomain } from './validate';
export {
  parse,
  withName,
  withTag,
  withDigest,
  trimNamed,
  isNamed,
  isTagged,
  isNamedTagged,
  isDigested,
  isCanonical,
  isNameOnly,
} from './reference';
export type {
  Reference,
  RepositoryReference,
  TaggedReference,
  CanonicalReference,
  TaggedCanonicalReference,
  DigestReference,
  Named,
  Tagged,
  Digested,
  NamedTagged,
  Canonical,
} from './reference';
export {
  DEFAULT_DOMAIN,
  LEGACY_DEFAULT_DOMAIN,
  OFFICIAL_REPOSITORY_PREFIX,
  DEFAULT_TAG,
  parseNormalizedNamed,
  parseNamed,
  parseAnyReference,
  parseDockerRef,
  tagNameOnly,
  withDefaultTag,
  familiarName,
  familiarString,
} from './normalize';
