import { checkDigest, digestError, parseDigest } from './digest';
import { nameRegExp, nameWithAnyTagRegExp, referenceRegExp } from './grammar';
import {
  DigestInvalidError,
  NameContainsUppercaseError,
  NameEmptyError,
  ReferenceInvalidFormatError,
  ReferenceParseError,
} from './reference.error';
import { checkNameLength, checkTag } from './validate';

/** The repository part every named reference has. */
interface NameParts {
  /** `domain/path`, or just `path` when there is no domain. */
  readonly name: string;
  /** Host with optional port, as written (upper case kept); `""` when the name has none. */
  readonly domain: string;
  /** The repository path below the domain, e.g. `library/ubuntu`. */
  readonly path: string;
  /** The reference as text; parsing it again gives an equal reference. */
  toString(): string;
}

/** A repository without tag or digest: `registry.example.com/team/app`. */
export interface RepositoryReference extends NameParts {
  readonly kind: 'repository';
}

/** A repository and a tag: `team/app:1.2`. */
export interface TaggedReference extends NameParts {
  readonly kind: 'tagged';
  readonly tag: string;
}

/** A repository and a digest: `team/app@sha256:…`. */
export interface CanonicalReference extends NameParts {
  readonly kind: 'canonical';
  readonly digest: string;
}

/** A repository, a tag and a digest: `team/app:1.2@sha256:…` (the digest is what identifies it). */
export interface TaggedCanonicalReference extends NameParts {
  readonly kind: 'tagged+canonical';
  readonly tag: string;
  readonly digest: string;
}

/** A digest alone, without a repository (only {@link parseAnyReference} produces one). */
export interface DigestReference {
  readonly kind: 'digest';
  readonly digest: string;
  toString(): string;
}

/** Every shape a reference can take; switch on `kind`, or use the `is*` guards. */
export type Reference =
  | RepositoryReference
  | TaggedReference
  | CanonicalReference
  | TaggedCanonicalReference
  | DigestReference;

/** A reference with a repository name (and `domain`, `path`). */
export type Named = Extract<Reference, { readonly name: string }>;
/** A reference with a tag (every such reference is also named). */
export type Tagged = Extract<Reference, { readonly tag: string }>;
/** A reference with a digest, named or not. */
export type Digested = Extract<Reference, { readonly digest: string }>;
/** A named reference with a tag. */
export type NamedTagged = Extract<Named, { readonly tag: string }>;
/** A named reference with a digest: it identifies content, not a moving tag. */
export type Canonical = Extract<Named, { readonly digest: string }>;

/** `domain/path` when there is a domain. */
export function joinName(domain: string, path: string): string {
  return domain === '' ? path : `${domain}/${path}`;
}

/** The textual form shared by `toString` and the familiar forms. */
export function formatReference(name: string, tag: string | undefined, digest: string | undefined): string {
  return name + (tag === undefined ? '' : `:${tag}`) + (digest === undefined ? '' : `@${digest}`);
}

class RepositoryRef implements RepositoryReference {
  readonly kind = 'repository';
  readonly name: string;
  constructor(
    readonly domain: string,
    readonly path: string,
  ) {
    this.name = joinName(domain, path);
    Object.freeze(this);
  }
  toString(): string {
    return this.name;
  }
}

class TaggedRef implements TaggedReference {
  readonly kind = 'tagged';
  readonly name: string;
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string,
  ) {
    this.name = joinName(domain, path);
    Object.freeze(this);
  }
  toString(): string {
    return formatReference(this.name, this.tag, undefined);
  }
}

class CanonicalRef implements CanonicalReference {
  readonly kind = 'canonical';
  readonly name: string;
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly digest: string,
  ) {
    this.name = joinName(domain, path);
    Object.freeze(this);
  }
  toString(): string {
    return formatReference(this.name, undefined, this.digest);
  }
}

class TaggedCanonicalRef implements TaggedCanonicalReference {
  readonly kind = 'tagged+canonical';
  readonly name: string;
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string,
    readonly digest: string,
  ) {
    this.name = joinName(domain, path);
    Object.freeze(this);
  }
  toString(): string {
    return formatReference(this.name, this.tag, this.digest);
  }
}

class DigestRef implements DigestReference {
  readonly kind = 'digest';
  constructor(readonly digest: string) {
    Object.freeze(this);
  }
  toString(): string {
    return this.digest;
  }
}

/** Builds the most specific shape for already-validated parts. */
export function assemble(domain: string, path: string, tag?: string, digest?: string): Named {
  if (tag !== undefined && digest !== undefined) {
    return new TaggedCanonicalRef(domain, path, tag, digest);
  }
  if (tag !== undefined) {
    return new TaggedRef(domain, path, tag);
  }
  if (digest !== undefined) {
    return new CanonicalRef(domain, path, digest);
  }
  return new RepositoryRef(domain, path);
}

/** A name-and-digest reference for already-validated parts. */
export function canonicalReference(domain: string, path: string, digest: string): CanonicalReference {
  return new CanonicalRef(domain, path, digest);
}

/** A digest-only reference for an already-validated digest. */
export function digestOnly(digest: string): DigestReference {
  return new DigestRef(digest);
}

/** True when `ref` has a repository name. */
export function isNamed(ref: Reference): ref is Named {
  return ref.kind !== 'digest';
}

/** True when `ref` has a tag. */
export function isTagged(ref: Reference): ref is Tagged {
  return ref.kind === 'tagged' || ref.kind === 'tagged+canonical';
}

/** True when `ref` has a name and a tag (today the same set as {@link isTagged}). */
export function isNamedTagged(ref: Reference): ref is NamedTagged {
  return isTagged(ref);
}

/** True when `ref` has a digest, with or without a name. */
export function isDigested(ref: Reference): ref is Digested {
  return ref.kind === 'digest' || ref.kind === 'canonical' || ref.kind === 'tagged+canonical';
}

/** True when `ref` has a name and a digest. */
export function isCanonical(ref: Reference): ref is Canonical {
  return ref.kind === 'canonical' || ref.kind === 'tagged+canonical';
}

/** True when `ref` is a bare repository name, with neither tag nor digest. */
export function isNameOnly(ref: Reference): ref is RepositoryReference {
  return ref.kind === 'repository';
}

/**
 * Picks the error for a string `referenceRegExp` refused. The whole-reference expression is the
 * only judge of validity; this only decides which part to blame, so callers get TAG_INVALID or
 * DIGEST_INVALID instead of a vague NAME_INVALID when the name itself was fine.
 */
function explainMismatch(s: string): ReferenceParseError {
  const at = s.indexOf('@');
  const beforeDigest = at < 0 ? s : s.slice(0, at);
  if (beforeDigest === '') {
    return new ReferenceInvalidFormatError(s, 'a reference starts with a repository name');
  }
  const nameAndTag = nameWithAnyTagRegExp.exec(beforeDigest)?.groups;
  if (nameAndTag) {
    const tagError = nameAndTag.tag === undefined ? undefined : checkTag(nameAndTag.tag);
    if (tagError) {
      return tagError;
    }
    if (at >= 0) {
      const digest = checkDigest(s.slice(at + 1));
      return digest instanceof DigestInvalidError
        ? digest
        : digestError(s.slice(at + 1), { reason: 'expected algorithm:encoded' });
    }
    return new ReferenceInvalidFormatError(s);
  }
  // Lower-casing keeps every offset, so the name found in the lowered copy locates the original.
  const lowered = nameWithAnyTagRegExp.exec(beforeDigest.toLowerCase())?.groups;
  if (lowered && beforeDigest.toLowerCase() !== beforeDigest) {
    return new NameContainsUppercaseError(beforeDigest.slice(0, lowered.name.length));
  }
  return new ReferenceInvalidFormatError(s);
}

/**
 * Parses `[domain[:port]/]path[:tag][@digest]` exactly as written: no default domain, no
 * `library/`, no default tag (see `parseNormalizedNamed` for the docker way). A first component
 * counts as the domain whenever one is followed by `/` and matches the domain grammar.
 * @throws NameEmptyError for `""`.
 * @throws NameContainsUppercaseError when the path is only wrong by its case.
 * @throws TagInvalidError when the name is fine and the tag is not.
 * @throws DigestInvalidError / DigestUnsupportedError for a bad or unsupported digest.
 * @throws NameTooLongError when domain and path together exceed 255 characters.
 * @throws ReferenceInvalidFormatError for anything else.
 */
export function parse(s: string): Named {
  if (s === '') {
    throw new NameEmptyError();
  }
  const groups = referenceRegExp.exec(s)?.groups;
  if (!groups) {
    throw explainMismatch(s);
  }
  const tooLong = checkNameLength(groups.name);
  if (tooLong) {
    throw tooLong;
  }
  if (groups.digest !== undefined) {
    parseDigest(groups.digest);
  }
  return assemble(groups.domain ?? '', groups.path, groups.tag, groups.digest);
}

/**
 * Parses a name alone (`[domain/]path`, no tag or digest) as written.
 * @throws NameEmptyError, NameContainsUppercaseError, NameTooLongError or
 *   ReferenceInvalidFormatError (which includes a tag or digest being present).
 */
export function withName(name: string): RepositoryReference {
  if (name === '') {
    throw new NameEmptyError();
  }
  const groups = nameRegExp.exec(name)?.groups;
  if (!groups) {
    const lower = name.toLowerCase();
    throw lower !== name && nameRegExp.test(lower)
      ? new NameContainsUppercaseError(name)
      : new ReferenceInvalidFormatError(name);
  }
  const tooLong = checkNameLength(name);
  if (tooLong) {
    throw tooLong;
  }
  return new RepositoryRef(groups.domain ?? '', groups.path);
}

/**
 * Returns `named` with `tag` set (replacing any tag; a digest is kept).
 * @throws TagInvalidError when `tag` is not a valid tag.
 */
export function withTag(named: Named, tag: string): NamedTagged {
  const error = checkTag(tag);
  if (error) {
    throw error;
  }
  return isCanonical(named)
    ? new TaggedCanonicalRef(named.domain, named.path, tag, named.digest)
    : new TaggedRef(named.domain, named.path, tag);
}

/**
 * Returns `named` with `digest` set (replacing any digest; a tag is kept). The digest is checked
 * strictly, as `parse` would, so the result always parses back.
 * @throws DigestInvalidError or DigestUnsupportedError.
 */
export function withDigest(named: Named, digest: string): Canonical {
  parseDigest(digest);
  return isTagged(named)
    ? new TaggedCanonicalRef(named.domain, named.path, named.tag, digest)
    : new CanonicalRef(named.domain, named.path, digest);
}

/** Drops any tag and digest, keeping domain and path. Never throws. */
export function trimNamed(named: Named): RepositoryReference {
  return new RepositoryRef(named.domain, named.path);
}
