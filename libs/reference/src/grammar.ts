/**
 * The reference grammar, built from small named pieces so each rule can be read (and tested) on
 * its own. It follows the grammar of `github.com/distribution/reference`:
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [ domain "/" ] path
 *   domain           := host [ ":" port ]
 *   host             := domain-name | "[" ipv6-address "]"
 *   domain-name      := domain-component ( "." domain-component )*      (IPv4 included)
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   port             := [0-9]+
 *   path             := path-component ( "/" path-component )*
 *   path-component   := alphanumeric ( separator alphanumeric )*
 *   alphanumeric     := [a-z0-9]+
 *   separator        := "." | "_" | "__" | "-"+
 *   tag              := [\w][\w.-]{0,127}
 *   digest           := algorithm ":" encoded
 *   algorithm        := [a-z0-9]+ ( [.+_-] [a-z0-9]+ )*
 *   encoded          := [a-zA-Z0-9=_-]+
 *   identifier       := [a-f0-9]{64}
 *
 * Every piece is written so that a failing match backtracks at most linearly: JavaScript's engine
 * backtracks, unlike Go's RE2, and these expressions see untrusted input from request paths.
 */

/** Wraps pieces in a non-capturing group. */
const group = (...pieces: string[]): string => `(?:${pieces.join('')})`;
/** Zero or one occurrence of the pieces. */
const optional = (...pieces: string[]): string => `${group(...pieces)}?`;
/** Zero or more occurrences of the pieces. */
const anyTimes = (...pieces: string[]): string => `${group(...pieces)}*`;
/** A named capture, so callers read `groups.tag` instead of counting parentheses. */
const capture = (name: string, ...pieces: string[]): string => `(?<${name}>${pieces.join('')})`;
/** Anchors the pieces at both ends: a reference is valid as a whole or not at all. */
const anchored = (...pieces: string[]): RegExp => new RegExp(`^${pieces.join('')}$`);

// Only lower case: upper case in a repository path is refused (with its own error).
const alphanumeric = '[a-z0-9]+';
// Repeated dashes are allowed so that host names can be path components; underscores only up to two.
const separator = group('[._]|__|-+');
const pathComponent = alphanumeric + anyTimes(separator, alphanumeric);
const path = pathComponent + anyTimes('/', pathComponent);

// Upper case is tolerated here (DNS is case-insensitive) but never in the path.
const domainComponent = '[a-zA-Z0-9]' + optional('[a-zA-Z0-9-]*[a-zA-Z0-9]');
const domainName = domainComponent + anyTimes('\\.', domainComponent);
// Zone identifiers (`%eth0`) and embedded IPv4 (`::ffff:1.2.3.4`) are deliberately excluded.
const ipv6Address = '\\[[a-fA-F0-9:]+\\]';
const host = group(domainName, '|', ipv6Address);
const port = '[0-9]+';
const domain = host + optional(':', port);

const name = optional(domain, '/') + path;

const tag = '[\\w][\\w.-]{0,127}';

const digestAlgorithm = '[a-z0-9]+' + anyTimes('[.+_-][a-z0-9]+');
const digestEncoded = '[a-zA-Z0-9=_-]+';
const digest = digestAlgorithm + ':' + digestEncoded;

const identifier = '[a-f0-9]{64}';

const reference = name + optional(':', tag) + optional('@', digest);

/**
 * The grammar's pieces as unanchored regular-expression sources without capturing groups, for
 * composing into other expressions (a route pattern, say). Use the anchored `*RegExp` constants
 * or the validators to check a whole value.
 */
export const grammar = Object.freeze({
  alphanumeric,
  separator,
  pathComponent,
  path,
  domainComponent,
  domainName,
  ipv6Address,
  host,
  port,
  domain,
  name,
  tag,
  digestAlgorithm,
  digestEncoded,
  digest,
  identifier,
  reference,
});

/**
 * A whole reference, anchored, with named groups `name`, `domain` (absent when the name has
 * none), `path`, `tag` and `digest`. Matching proves the syntax only: the 255-character name
 * limit and the digest's algorithm and length are checked by `parse`.
 */
export const referenceRegExp: RegExp = anchored(
  capture('name', optional(capture('domain', domain), '/'), capture('path', path)),
  optional(':', capture('tag', tag)),
  optional('@', capture('digest', digest)),
);

/** A whole name (`[domain/]path`), anchored, with named groups `domain` and `path`. */
export const nameRegExp: RegExp = anchored(optional(capture('domain', domain), '/'), capture('path', path));

/** A whole repository path (no domain), anchored. The length limit is not part of it. */
export const pathRegExp: RegExp = anchored(path);

/** A whole domain (host and optional port), anchored. */
export const domainRegExp: RegExp = anchored(domain);

/** A whole tag, anchored (1 to 128 characters). */
export const tagRegExp: RegExp = anchored(tag);

/**
 * A whole digest by grammar only, anchored, with named groups `algorithm` and `encoded`. Says
 * nothing about whether the algorithm is supported or the length right: see `parseDigest`.
 */
export const digestRegExp: RegExp = anchored(
  capture('algorithm', digestAlgorithm),
  ':',
  capture('encoded', digestEncoded),
);

/** A bare 64-hex identifier (a sha256 value without its algorithm), anchored. */
export const identifierRegExp: RegExp = anchored(identifier);

/**
 * A name followed by anything after a colon, used only to explain a failed match: if this
 * matches while `referenceRegExp` does not, the name was fine and the tag was the problem.
 */
export const nameWithAnyTagRegExp: RegExp = anchored(capture('name', name), optional(':', capture('tag', '[^/]*')));
