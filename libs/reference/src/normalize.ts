import { isValidDigest } from './digest';
import { identifierRegExp } from './grammar';
import { NameContainsUppercaseError, NameNotCanonicalError, ReferenceInvalidFormatError } from './reference.error';
import {
  CanonicalReference,
  Named,
  Reference,
  RepositoryReference,
  TaggedReference,
  canonicalReference,
  digestOnly,
  formatReference,
  isCanonical,
  isNameOnly,
  joinName,
  isTagged,
  parse,
  withTag,
} from './reference';

/** Docker Hub's domain in canonical names (`docker.io/library/ubuntu`). */
export const DEFAULT_DOMAIN = 'docker.io';

/** Docker Hub's old "index" domain, rewritten to {@link DEFAULT_DOMAIN} on normalisation. */
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';

/** Namespace of Docker Hub's official images, implied by one-component names. */
export const OFFICIAL_REPOSITORY_PREFIX = 'library/';

/** Tag assumed when a reference names neither tag nor digest. */
export const DEFAULT_TAG = 'latest';

/**
 * Splits a familiar name into domain and the rest the way docker does. The first component is a
 * domain only if it looks like one (a dot, a colon, `localhost`, or upper case, which a path may
 * not contain); otherwise the name lives on Docker Hub.
 */
function splitDockerDomain(s: string): { domain: string; remainder: string } {
  const slash = s.indexOf('/');
  if (slash < 0) {
    // A single component is always a Docker Hub image, so `ubuntu:22.04` is never host:port.
    return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPOSITORY_PREFIX + s };
  }
  const first = s.slice(0, slash);
  const rest = s.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === LEGACY_DEFAULT_DOMAIN) {
    [domain, remainder] = [DEFAULT_DOMAIN, rest];
  } else if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    [domain, remainder] = [first, rest];
  } else {
    [domain, remainder] = [DEFAULT_DOMAIN, s];
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) {
    remainder = OFFICIAL_REPOSITORY_PREFIX + remainder;
  }
  return { domain, remainder };
}

/**
 * Parses a name as a user types it and returns its canonical form: `ubuntu` →
 * `docker.io/library/ubuntu`, `foo/bar` → `docker.io/foo/bar`, `index.docker.io/x` →
 * `docker.io/library/x`; names on other domains (`localhost/foo`, `ghcr.io/a/b`) stay as they
 * are. Tag and digest are kept; no default tag is added (see {@link tagNameOnly}).
 * @throws ReferenceInvalidFormatError for a bare 64-hex string: it would be read as an image ID.
 * @throws NameContainsUppercaseError when the path has upper case.
 * @throws anything `parse` throws for the canonical form (e.g. NameTooLongError, which counts
 *   the added `docker.io/` too).
 */
export function parseNormalizedNamed(s: string): Named {
  if (identifierRegExp.test(s)) {
    throw new ReferenceInvalidFormatError(
      s,
      'cannot specify 64-byte hexadecimal strings; it would be ambiguous with an image ID',
    );
  }
  const { domain, remainder } = splitDockerDomain(s);
  // Checked before parsing, where an upper-case first component would pass as a domain.
  const remote = remainder.split(/[:@]/, 1)[0];
  if (remote.toLowerCase() !== remote) {
    throw new NameContainsUppercaseError(remote);
  }
  return parse(`${domain}/${remainder}`);
}

/**
 * Like {@link parseNormalizedNamed}, but the input must already be canonical.
 * @throws NameNotCanonicalError when normalising changes the string (e.g. `ubuntu`).
 * @throws anything {@link parseNormalizedNamed} throws.
 */
export function parseNamed(s: string): Named {
  const named = parseNormalizedNamed(s);
  if (named.toString() !== s) {
    throw new NameNotCanonicalError(s, `the canonical form is "${named.toString()}"`);
  }
  return named;
}

/**
 * Parses what a user may type where an image is expected: a bare 64-hex identifier (taken as
 * sha256), a digest, or a familiar name (normalised).
 * @throws anything {@link parseNormalizedNamed} throws, when it is neither identifier nor digest.
 */
export function parseAnyReference(s: string): Reference {
  if (identifierRegExp.test(s)) {
    return digestOnly(`sha256:${s}`);
  }
  if (isValidDigest(s)) {
    return digestOnly(s);
  }
  return parseNormalizedNamed(s);
}

/**
 * Adds the default tag `latest` to a bare name; returns a tagged or digested reference unchanged.
 * Never throws.
 */
export function tagNameOnly(named: Named): Exclude<Named, RepositoryReference> {
  return isNameOnly(named) ? withTag(named, DEFAULT_TAG) : named;
}

/** Same as {@link tagNameOnly}, under the name that says what it does. Never throws. */
export const withDefaultTag = tagNameOnly;

/**
 * Normalises like docker before a pull: canonical name, `:latest` when there is neither tag nor
 * digest, and the tag dropped when there is a digest (the digest decides what is pulled).
 * @throws anything {@link parseNormalizedNamed} throws.
 */
export function parseDockerRef(s: string): TaggedReference | CanonicalReference {
  const named = tagNameOnly(parseNormalizedNamed(s));
  if (named.kind === 'tagged+canonical') {
    return canonicalReference(named.domain, named.path, named.digest);
  }
  return named;
}

/** Domain and path with Docker Hub's `docker.io/` and `library/` left out. */
function familiarParts(named: Named): { domain: string; path: string } {
  if (named.domain !== DEFAULT_DOMAIN) {
    return { domain: named.domain, path: named.path };
  }
  const official = named.path.startsWith(OFFICIAL_REPOSITORY_PREFIX)
    ? named.path.slice(OFFICIAL_REPOSITORY_PREFIX.length)
    : undefined;
  // Only one level below library/ is shortened: `library/a/b` would not parse back to itself.
  return { domain: '', path: official !== undefined && !official.includes('/') ? official : named.path };
}

/**
 * The short name docker shows: `docker.io/library/ubuntu` → `ubuntu`, `docker.io/foo/bar` →
 * `foo/bar`; names on other domains are returned whole. Never throws.
 */
export function familiarName(named: Named): string {
  const { domain, path } = familiarParts(named);
  return joinName(domain, path);
}

/**
 * The reference as docker shows it: {@link familiarName} plus tag and digest
 * (`docker.io/library/ubuntu:22.04` → `ubuntu:22.04`). A digest-only reference is its digest.
 * Never throws.
 */
export function familiarString(ref: Reference): string {
  if (ref.kind === 'digest') {
    return ref.digest;
  }
  return formatReference(
    familiarName(ref),
    isTagged(ref) ? ref.tag : undefined,
    isCanonical(ref) ? ref.digest : undefined,
  );
}
