import { blobOf, sha256, type TestBlob } from './images';

/**
 * A seeded generator of hostile /v2 requests (bad names, digests, tags, pagination, ranges,
 * lengths, JSON, NULs, huge values) over every route kind and method. Every request it makes is
 * invalid, so a correct registry answers each with a 4xx (or, where a case says so, with the one
 * other status HTTP allows) and changes nothing. The same seed and target give the same cases.
 */

/** Route kinds of the /v2 API, named as `parseV2Path` names them. */
export type HostileRouteKind =
  | 'base'
  | 'catalog'
  | 'tags'
  | 'manifest'
  | 'referrers'
  | 'blob'
  | 'upload-start'
  | 'upload';

/** Which of the three forms of `POST …/blobs/uploads/` a case uses. */
export type UploadStartForm = 'plain' | '?digest=' | '?mount=&from=';

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** What a case aims at: `route method`, or `upload-start POST <form>`; the start of its label. */
export type HostileOperation = `${HostileRouteKind} ${Method}` | `upload-start POST ${UploadStartForm}`;

/** One request exactly as it goes on the wire (the path is sent unnormalised). */
export interface HostileRequest {
  method: string;
  /** Path and query string, percent-encoded as sent. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** A generated hostile request with what it aims at and what a correct registry answers. */
export interface HostileCase extends HostileRequest {
  /** `<operation>: <what is wrong>`; unique, and the same for every seed. */
  label: string;
  /** The label of the case this one derives from (its own, unless it is a noisy variant). */
  key: string;
  route: HostileRouteKind;
  form?: UploadStartForm;
  /** The 4xx statuses a correct registry may answer, where the spec narrows them; else any 4xx. */
  statuses?: readonly number[];
  /** A status other than 4xx that is also correct here, and why. */
  alsoCorrect?: { status: number; why: string };
}

/** The legitimate content seeded before a run, which the cases aim at without changing it. */
export interface HostileTarget {
  repository: string;
  /** The tag of `manifest`. */
  tag: string;
  manifest: { digest: string; bytes: Buffer; mediaType: string };
  /** Config then layer of the image `manifest`, linked in `repository`. */
  blobs: [TestBlob, TestBlob];
  /** An artifact whose subject is `manifest`, pushed by digest (so referrers is not empty). */
  referrer: { digest: string; bytes: Buffer; artifactType: string };
  /** The OCI empty blob `{}`, the referrer's config and layer. */
  emptyBlob: TestBlob;
  /** An open upload session in `repository` with `size` bytes committed. */
  upload: { id: string; size: number };
}

/** The default seed; `LADING_HOSTILE_SEED` overrides it. */
export const DEFAULT_HOSTILE_SEED = 20_251_201;

/** The seed of this run: `LADING_HOSTILE_SEED` when set (a decimal integer), else the default. */
export function hostileSeed(env: Record<string, string | undefined> = process.env): number {
  const raw = env.LADING_HOSTILE_SEED;
  if (raw === undefined || raw === '') return DEFAULT_HOSTILE_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`LADING_HOSTILE_SEED must be a non-negative integer, got "${raw}"`);
  }
  return seed;
}

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const REFERRER_TYPE = 'application/vnd.lading.hostile.test';

/**
 * The content to seed for `seed` (deterministic bytes; `seedHostileTarget` pushes it and opens
 * the upload session with `uploadChunk` committed).
 */
export function hostileSeedContent(seed: number): Omit<HostileTarget, 'upload'> & { uploadChunk: Buffer } {
  const config = blobOf(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }),
  );
  const layer = blobOf(`hostile layer of seed ${seed}: `.padEnd(600, '.'));
  const emptyBlob = blobOf('{}');
  const manifestBytes = Buffer.from(JSON.stringify(imageManifest(config, layer)));
  const manifest = { digest: sha256(manifestBytes), bytes: manifestBytes, mediaType: OCI_MANIFEST };
  const referrerBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: REFERRER_TYPE,
      config: descriptor(OCI_EMPTY, emptyBlob),
      layers: [descriptor(OCI_EMPTY, emptyBlob)],
      subject: { mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifestBytes.length },
    }),
  );
  return {
    repository: 'hostile/seeded',
    tag: 'v1',
    manifest,
    blobs: [config, layer],
    referrer: { digest: sha256(referrerBytes), bytes: referrerBytes, artifactType: REFERRER_TYPE },
    emptyBlob,
    uploadChunk: Buffer.from(`chunk ${seed}`),
  };
}

function descriptor(mediaType: string, blob: TestBlob): { mediaType: string; digest: string; size: number } {
  return { mediaType, digest: blob.digest, size: blob.size };
}

function imageManifest(config: TestBlob, layer: TestBlob): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(OCI_CONFIG, config),
    layers: [descriptor(OCI_LAYER, layer)],
  };
}

// The 4xx statuses a correct registry may answer, where the spec (or HTTP) narrows them.
const NOT_FOUND = [404];
const BAD_REQUEST = [400];
/** An invalid name, digest, tag or id: refused as such, found nowhere, or (when long) too long a URI. */
const REFUSED = [400, 404, 414];
const NO_SUCH_METHOD = [404, 405];
const TOO_LARGE = [400, 413];
const RANGE_NOT_SATISFIABLE = [416];
/** A chunk whose headers contradict each other or the session: a bad request, or out of order. */
const CHUNK_REFUSED = [400, 416];
const HEAD_TOO_LARGE = [400, 414, 431];

// The tables below keep one case per line, so they read as tables.

/** Names that break the repository grammar or its 255-character cap, as they appear in a path. */
// prettier-ignore
const BAD_NAMES: readonly [string, string][] = [
  ['upper case', 'Hostile/Seeded'],
  ['a ".." segment', 'hostile/../seeded'],
  ['only ".."', '..'],
  ['a "." segment', 'hostile/./seeded'],
  ['an encoded ".." segment', 'hostile/%2e%2e/seeded'],
  ['300 characters', 'a'.repeat(300)],
  ['256 characters of valid components', `${'ab/'.repeat(85)}a`],
  ['10000 characters', 'a'.repeat(10_000)],
  ['a %00 inside', 'hostile%00seeded'],
  ['a trailing %00', 'hostile/seeded%00'],
  ['an encoded slash %2F', 'hostile%2Fseeded'],
  ['an empty segment', 'hostile//seeded'],
  ['a leading empty segment', '/hostile/seeded'],
  ['a trailing empty segment', 'hostile/seeded/'],
  ['unicode (encoded é)', 'hostile/caf%C3%A9'],
  ['fullwidth unicode', 'hostile/%EF%BC%A1'],
  ['an encoded space', 'hostile%20seeded'],
  ['an encoded newline', 'hostile%0Aseeded'],
  ['a leading separator', '-hostile/seeded'],
  ['a trailing separator', 'hostile/seeded-'],
  ['three underscores', 'hostile___seeded'],
  ['dot then dash', 'hostile.-seeded'],
  ['a malformed escape %zz', 'hostile%zzseeded'],
  ['a lone %', 'hostile/seeded%'],
  ['invalid UTF-8 %FF', 'hostile%FFseeded'],
  ['an encoded backslash', 'hostile%5Cseeded'],
  ['a colon', 'hostile:seeded'],
  ['an at sign', 'hostile@seeded'],
];

/** Digest strings that break the digest grammar, built around a real digest's hex. */
function badDigests(real: string): [string, string][] {
  const hex = real.slice('sha256:'.length);
  return [
    ['md5', 'md5:d41d8cd98f00b204e9800998ecf8427e'],
    ['sha384 (unsupported)', `sha384:${'c'.repeat(96)}`],
    ['63 hex digits', `sha256:${hex.slice(1)}`],
    ['65 hex digits', `sha256:${hex}0`],
    ['upper-case hex of the real digest', `sha256:${hex.toUpperCase()}`],
    ['upper-case algorithm of the real digest', `SHA256:${hex}`],
    ['"sha256:" with no hex', 'sha256:'],
    ['"sha256" with no colon', 'sha256'],
    ['no algorithm', `:${hex}`],
    ['the bare hex of the real digest', hex],
    ['a %00 inside the hex', `sha256:${hex.slice(0, 32)}%00${hex.slice(32)}`],
    ['the real digest with a trailing %00', `sha256:${hex}%00`],
    ['non-hex digits', `sha256:${'g'.repeat(64)}`],
    ['sha512 with a sha256 length', `sha512:${hex}`],
    ['a double colon', `sha256::${hex}`],
    ['5000 hex digits', `sha256:${'a'.repeat(5000)}`],
    ['the real digest with a trailing %20', `sha256:${hex}%20`],
    ['an unsupported algorithm with a "+"', 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564'],
  ];
}

/** References that are neither tags nor digests, as they appear in a path. */
// prettier-ignore
const BAD_TAGS: readonly [string, string][] = [
  ['129 characters', 'a'.repeat(129)],
  ['10000 characters', 't'.repeat(10_000)],
  ['a leading "."', '.v1'],
  ['a leading "-"', '-v1'],
  ['a trailing %00', 'v1%00'],
  ['only %00', '%00'],
  ['an encoded space', 'v1%20'],
  ['an encoded slash', 'v1%2Fx'],
  ['unicode (encoded é)', 'v%C3%A9'],
  ['a "+"', 'v1+x'],
  ['an "@"', 'v1@x'],
  ['a "~"', '~v1'],
  ['a malformed escape', 'v1%zz'],
  ['an encoded newline', 'v1%0A'],
  ['a colon that is no digest', 'v1:x'],
];

/** Valid tags that do not exist: 404 for GET, HEAD and DELETE (never PUT: that would create them). */
const UNKNOWN_TAGS: readonly [string, string][] = [
  ['the seeded tag in upper case', 'V1'],
  ['the seeded tag with a trailing "."', 'v1.'],
  ['128 characters', 'b'.repeat(128)],
];

/**
 * `n` values that are no decimal integer ≥ 0, even to a lenient parser such as Go's
 * `strconv.Atoi` (which takes "+1" and "-0", so those are left out).
 */
const BAD_N: readonly [string, string][] = [
  ['-1', '-1'],
  ['non-numeric', 'abc'],
  ['%00', '%00'],
  ['a trailing %00', '1%00'],
  ['1.5', '1.5'],
  ['hex 0x10', '0x10'],
  ['a leading space', '%201'],
  ['1e3', '1e3'],
  ['a fullwidth digit', '%EF%BC%91'],
];

/** `last` values no tag or repository name can equal: they hold NUL. */
const BAD_LAST: readonly [string, string][] = [
  ['%00', '%00'],
  ['5000 characters then %00', `${'z'.repeat(5000)}%00`],
  ['huge n and %00', '%00&n=99999999999999999999999'],
];

/** `Range` headers that are malformed or cannot be satisfied for a blob of `size` bytes. */
function badRanges(size: number): [string, string][] {
  return [
    ['end before start', 'bytes=9-1'],
    ['non-numeric', 'bytes=abc'],
    ['empty', 'bytes='],
    ['only a dash', 'bytes=-'],
    ['a huge start', 'bytes=99999999999999999999-'],
    ['a zero suffix', 'bytes=-0'],
    ['a start at the size', `bytes=${size}-`],
    ['a start past the size', `bytes=${size + 1000}-${size + 2000}`],
    ['another unit', 'items=0-1'],
    ['a double dash', 'bytes=--1'],
    ['400 digits', `bytes=${'9'.repeat(400)}-`],
    ['one bad range of two', 'bytes=9-1,20-10'],
  ];
}

const NESTING = 100_000;

/** What a case adds to its request line. */
interface CaseExtra {
  headers?: Record<string, string>;
  body?: Buffer;
  alsoCorrect?: HostileCase['alsoCorrect'];
}

/**
 * The cases for `target`, deterministically from `seed`: a fixed set over every route, method
 * and category, then `variants` (default 150) of them again with harmless noise headers, all in
 * a seeded order. Throws if two cases would share a label.
 */
export function hostileCases(target: HostileTarget, seed: number, options: { variants?: number } = {}): HostileCase[] {
  const rand = mulberry32(seed);
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('');
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  const unknownSha256 = () => `sha256:${hex(64)}`;

  const cases: HostileCase[] = [];
  const labels = new Set<string>();
  const push = (c: HostileCase) => {
    if (labels.has(c.label)) throw new Error(`hostile: two cases are labelled "${c.label}"`);
    labels.add(c.label);
    cases.push(c);
  };
  /** Adds `<op>: <what>`, a request to `path`, answered by one of `statuses` (any 4xx if unset). */
  const add = (
    op: HostileOperation,
    what: string,
    path: string,
    statuses?: readonly number[],
    extra: CaseExtra = {},
  ) => {
    const [route, method, form] = op.split(' ') as [HostileRouteKind, Method, UploadStartForm | undefined];
    const label = `${op}: ${what}`;
    push({
      label,
      key: label,
      route,
      method,
      path,
      headers: extra.headers ?? {},
      ...(extra.body && { body: extra.body }),
      ...(form && { form }),
      ...(statuses && { statuses }),
      ...(extra.alsoCorrect && { alsoCorrect: extra.alsoCorrect }),
    });
  };

  const R = target.repository;
  const OTHER = 'hostile/other';
  const [config, layer] = target.blobs;
  const M = target.manifest;
  const session = target.upload.id;
  const size = target.upload.size;
  const up = `/v2/${R}/blobs/uploads/${session}`;
  const octet = { 'content-type': 'application/octet-stream' };
  const asManifest = { 'content-type': OCI_MANIFEST };
  const five = Buffer.from('12345');
  const chunkAt = (start: number) => ({
    headers: { ...octet, 'content-range': `${start}-${start + five.length - 1}` },
    body: five,
  });
  const seededManifest = { headers: asManifest, body: M.bytes };

  // --- bad repository names, over every route kind and method ---------------------------------
  // Each request would be valid with the seeded name; some would change it (DELETE, PUT, PATCH).
  for (const [what, name] of BAD_NAMES) {
    const n = `name with ${what}`;
    add('tags GET', n, `/v2/${name}/tags/list`, REFUSED);
    add('tags HEAD', n, `/v2/${name}/tags/list?n=1`, REFUSED);
    add('manifest GET', n, `/v2/${name}/manifests/${target.tag}`, REFUSED);
    add('manifest HEAD', n, `/v2/${name}/manifests/${M.digest}`, REFUSED);
    add('manifest PUT', n, `/v2/${name}/manifests/${target.tag}`, REFUSED, seededManifest);
    add('manifest DELETE', n, `/v2/${name}/manifests/${M.digest}`, REFUSED);
    add('referrers GET', n, `/v2/${name}/referrers/${M.digest}`, REFUSED);
    add('blob GET', n, `/v2/${name}/blobs/${config.digest}`, REFUSED);
    add('blob HEAD', n, `/v2/${name}/blobs/${layer.digest}`, REFUSED);
    add('blob DELETE', n, `/v2/${name}/blobs/${layer.digest}`, REFUSED);
    add('upload-start POST plain', n, `/v2/${name}/blobs/uploads/`, REFUSED);
    add('upload-start POST ?digest=', n, `/v2/${name}/blobs/uploads/?digest=${config.digest}`, REFUSED, {
      headers: octet,
      body: config.bytes,
    });
    add('upload-start POST ?mount=&from=', n, `/v2/${name}/blobs/uploads/?mount=${config.digest}&from=${R}`, REFUSED);
    add('upload GET', n, `/v2/${name}/blobs/uploads/${session}`, REFUSED);
    add('upload PATCH', n, `/v2/${name}/blobs/uploads/${session}`, REFUSED, chunkAt(size));
    add('upload PUT', n, `/v2/${name}/blobs/uploads/${session}?digest=${sha256(five)}`, REFUSED);
    add('upload DELETE', n, `/v2/${name}/blobs/uploads/${session}`, REFUSED);
  }

  // --- single-request uploads and mounts that must store nothing --------------------------------
  // (A POST that opens a session is valid, so every one here has a bad or mismatched digest.)
  add(
    'upload-start POST ?mount=&from=',
    'from a bad name, and a bad digest',
    `/v2/${R}/blobs/uploads/?mount=${config.digest}&from=Hostile/Seeded&digest=sha256:`,
    BAD_REQUEST,
  );
  add(
    'upload-start POST ?mount=&from=',
    'from a repository that does not exist, and a digest that does not match the body',
    `/v2/${OTHER}/blobs/uploads/?mount=${config.digest}&from=hostile/nowhere&digest=${unknownSha256()}`,
    BAD_REQUEST,
    { headers: octet, body: config.bytes },
  );
  add(
    'upload-start POST ?digest=',
    'a digest that does not match the body',
    `/v2/${R}/blobs/uploads/?digest=${unknownSha256()}`,
    BAD_REQUEST,
    { headers: octet, body: config.bytes },
  );
  add(
    'upload-start POST ?digest=',
    'a digest that does not match the body, in a repository that does not exist',
    `/v2/${OTHER}/blobs/uploads/?digest=${unknownSha256()}`,
    BAD_REQUEST,
    { headers: octet, body: config.bytes },
  );
  add(
    'upload-start POST ?digest=',
    'the real config digest over the layer bytes',
    `/v2/${R}/blobs/uploads/?digest=${config.digest}`,
    BAD_REQUEST,
    { headers: octet, body: layer.bytes },
  );

  // --- bad digests ------------------------------------------------------------------------------
  for (const [what, d] of badDigests(config.digest)) {
    const n = `digest with ${what}`;
    add('blob GET', n, `/v2/${R}/blobs/${d}`, REFUSED);
    add('blob HEAD', n, `/v2/${R}/blobs/${d}`, REFUSED);
    add('blob DELETE', n, `/v2/${R}/blobs/${d}`, REFUSED);
    add('upload-start POST ?digest=', n, `/v2/${R}/blobs/uploads/?digest=${d}`, BAD_REQUEST, {
      headers: octet,
      body: config.bytes,
    });
    add(
      'upload-start POST ?mount=&from=',
      `${n} (and as digest=)`,
      `/v2/${R}/blobs/uploads/?mount=${d}&from=${R}&digest=${d}`,
      BAD_REQUEST,
    );
    add('upload PUT', n, `${up}?digest=${d}`, BAD_REQUEST);
  }
  // The notes of the spec: GET and HEAD of a malformed manifest reference are 404 MANIFEST_UNKNOWN.
  for (const [what, d] of badDigests(M.digest)) {
    const n = `digest with ${what}`;
    add('manifest GET', n, `/v2/${R}/manifests/${d}`, NOT_FOUND);
    add('manifest HEAD', n, `/v2/${R}/manifests/${d}`, NOT_FOUND);
    add('manifest DELETE', n, `/v2/${R}/manifests/${d}`, REFUSED);
    add('referrers GET', n, `/v2/${R}/referrers/${d}`, REFUSED);
  }
  // Valid digests that are unknown here, or known only in another repository or as another kind.
  for (const [what, repo, d] of [
    ['an unknown sha256', R, unknownSha256()],
    ['an unknown sha512', R, `sha512:${hex(128)}`],
    ['the real digest in a repository that does not exist', OTHER, config.digest],
  ]) {
    add('blob GET', what, `/v2/${repo}/blobs/${d}`, NOT_FOUND);
    add('blob HEAD', what, `/v2/${repo}/blobs/${d}`, NOT_FOUND);
    add('blob DELETE', what, `/v2/${repo}/blobs/${d}`, NOT_FOUND);
  }
  for (const [what, repo, d] of [
    ['an unknown sha256', R, unknownSha256()],
    ['the real digest in a repository that does not exist', OTHER, M.digest],
    ['a blob digest (not a manifest)', R, config.digest],
  ]) {
    add('manifest GET', what, `/v2/${repo}/manifests/${d}`, NOT_FOUND);
    add('manifest HEAD', what, `/v2/${repo}/manifests/${d}`, NOT_FOUND);
    add('manifest DELETE', what, `/v2/${repo}/manifests/${d}`, NOT_FOUND);
  }
  add('tags GET', 'a repository that does not exist', `/v2/${OTHER}/tags/list`, NOT_FOUND);
  add(
    'tags GET',
    'a repository that does not exist, huge n',
    `/v2/${OTHER}/tags/list?n=99999999999999999999999`,
    NOT_FOUND,
  );

  // --- bad tags -----------------------------------------------------------------------------------
  for (const [what, t] of BAD_TAGS) {
    const n = `tag with ${what}`;
    add('manifest GET', n, `/v2/${R}/manifests/${t}`, NOT_FOUND);
    add('manifest HEAD', n, `/v2/${R}/manifests/${t}`, NOT_FOUND);
    add('manifest PUT', n, `/v2/${R}/manifests/${t}`, REFUSED, seededManifest);
    add('manifest DELETE', n, `/v2/${R}/manifests/${t}`, REFUSED);
  }
  for (const [what, t] of UNKNOWN_TAGS) {
    const n = `unknown tag, ${what}`;
    add('manifest GET', n, `/v2/${R}/manifests/${t}`, NOT_FOUND);
    add('manifest HEAD', n, `/v2/${R}/manifests/${t}`, NOT_FOUND);
    add('manifest DELETE', n, `/v2/${R}/manifests/${t}`, NOT_FOUND);
  }

  // --- pagination ---------------------------------------------------------------------------------
  // No name holds NUL, so such a `last` is refused (400) or, as the reference registry does,
  // compared as a plain lower bound (200); a 5xx is wrong either way.
  const lastIsABound = {
    alsoCorrect: { status: 200, why: '`last` may be compared as a lower bound without validation' },
  };
  for (const [listing, path] of [
    ['catalog', '/v2/_catalog'],
    ['tags', `/v2/${R}/tags/list`],
  ] as const) {
    for (const method of ['GET', 'HEAD'] as const) {
      for (const [what, n] of BAD_N) add(`${listing} ${method}`, `n ${what}`, `${path}?n=${n}`, BAD_REQUEST);
      for (const [what, last] of BAD_LAST)
        add(`${listing} ${method}`, `last ${what}`, `${path}?last=${last}`, BAD_REQUEST, lastIsABound);
    }
  }

  // --- referrers filter -------------------------------------------------------------------------
  // No artifact type holds NUL: refused (400), or a filter that matches nothing (200, empty index).
  const matchesNothing = {
    alsoCorrect: { status: 200, why: 'a filter no artifact type can match may answer an empty index' },
  };
  for (const [what, at] of [
    ['%00', '%00'],
    ['the real artifact type with a trailing %00', `${target.referrer.artifactType}%00`],
    ['%00 twice', '%00&artifactType=%00'],
  ]) {
    add(
      'referrers GET',
      `artifactType ${what}`,
      `/v2/${R}/referrers/${M.digest}?artifactType=${at}`,
      BAD_REQUEST,
      matchesNothing,
    );
    add(
      'referrers HEAD',
      `artifactType ${what}`,
      `/v2/${R}/referrers/${M.digest}?artifactType=${at}`,
      BAD_REQUEST,
      matchesNothing,
    );
  }

  // --- ranges -------------------------------------------------------------------------------------
  const ignored = { status: 200, why: 'HTTP lets a server ignore an invalid Range and send the whole blob' };
  for (const [what, range] of badRanges(config.size)) {
    add('blob GET', `Range ${what}`, `/v2/${R}/blobs/${config.digest}`, RANGE_NOT_SATISFIABLE, {
      headers: { range },
      alsoCorrect: ignored,
    });
    add('blob GET', `Range ${what}, unknown blob`, `/v2/${R}/blobs/${unknownSha256()}`, [404, 416], {
      headers: { range },
    });
  }

  // --- Content-Range and Content-Length on the open session --------------------------------------
  // A malformed header is a bad request (400); a well-formed chunk that does not start at the
  // session's end is out of order (416); headers that contradict each other may be either.
  // prettier-ignore
  const contentRanges: [string, string, readonly number[]][] = [
    ['malformed', 'abc', BAD_REQUEST],
    ['"bytes=" alone', 'bytes=', BAD_REQUEST],
    ['a negative start', `-1-${size + 3}`, BAD_REQUEST],
    ['two ranges', `${size}-${size + 1},${size + 2}-${size + 4}`, BAD_REQUEST],
    ['spaces around the dash', `${size} - ${size + 4}`, BAD_REQUEST],
    ['a unit and a star', '*/5', BAD_REQUEST],
    ['letters after the numbers', `${size}-${size + 4}x`, BAD_REQUEST],
    ['end before start', `${size + 4}-${size}`, CHUNK_REFUSED],
    ['longer than Content-Length', `${size}-${size + 99}`, CHUNK_REFUSED],
    ['shorter than Content-Length', `${size}-${size + 1}`, CHUNK_REFUSED],
    ['huge numbers', `${size}-99999999999999999999999`, CHUNK_REFUSED],
    ['a start of 0 (not the current end)', '0-4', RANGE_NOT_SATISFIABLE],
    ['a gap after the current end', `${size + 10}-${size + 14}`, RANGE_NOT_SATISFIABLE],
  ];
  for (const [what, contentRange, statuses] of contentRanges) {
    add('upload PATCH', `Content-Range ${what}`, up, statuses, {
      headers: { ...octet, 'content-range': contentRange },
      body: five,
    });
  }
  add('upload PATCH', 'Content-Range malformed, unknown session', `/v2/${R}/blobs/uploads/${uuid()}`, [400, 404], {
    headers: { ...octet, 'content-range': 'abc' },
    body: five,
  });
  for (const [what, length] of [
    ['non-numeric', 'abc'],
    ['negative', '-1'],
    ['beyond 2^64', '99999999999999999999'],
  ]) {
    const { headers } = chunkAt(size);
    add('upload PATCH', `Content-Length ${what}`, up, BAD_REQUEST, {
      headers: { ...headers, 'content-length': length },
      body: five,
    });
    add('manifest PUT', `Content-Length ${what}`, `/v2/${R}/manifests/${target.tag}`, BAD_REQUEST, {
      headers: { ...asManifest, 'content-length': length },
      body: M.bytes,
    });
  }

  // --- manifest bodies ------------------------------------------------------------------------------
  const V = imageManifest(config, layer);
  const vText = JSON.stringify(V);
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const text = (value: string) => Buffer.from(value);
  const deep = (inner: string) => `${'['.repeat(NESTING)}${inner}${']'.repeat(NESTING)}`;
  /** V with `"key":raw` added last (raw JSON text, so it can be what JSON.stringify cannot write). */
  const withRaw = (key: string, raw: string) => text(`${vText.slice(0, -1)},"${key}":${raw}}`);
  const layerWith = (patch: Record<string, unknown>) =>
    json({ ...V, layers: [{ ...descriptor(OCI_LAYER, layer), ...patch }] });
  const configWith = (patch: Record<string, unknown>) =>
    json({ ...V, config: { ...descriptor(OCI_CONFIG, config), ...patch } });
  const index = (manifests: unknown[]) => json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
  // prettier-ignore
  const bodies: [string, Buffer, string?][] = [
    // unreadable
    ['an empty body', Buffer.alloc(0)],
    ['truncated JSON', text(vText.slice(0, 40))],
    ['not JSON', text('blablabla')],
    ['JSON null', text('null')],
    ['a JSON array', text('[]')],
    ['a JSON string', text('"manifest"')],
    ['a JSON number', text('2')],
    ['two JSON documents', text(`${vText}{}`)],
    ['a byte-order mark first', text(`\uFEFF${vText}`)],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['a raw NUL byte after the JSON', Buffer.concat([text(vText), Buffer.from([0])])],
    ['a raw NUL byte inside a string', text(vText.replace(OCI_CONFIG, `${OCI_CONFIG}\u0000`))],
    ['a trailing comma', text(`${vText.slice(0, -1)},}`)],
    ['single quotes', text("{'schemaVersion':2}")],
    ['NaN', text(vText.replace('"schemaVersion":2', '"schemaVersion":NaN'))],
    ['a comment', text(`/* hostile */${vText}`)],
    ['a duplicate schemaVersion that wins as 1', withRaw('schemaVersion', '1')],
    ['100000 nested arrays', text(deep(''))],
    // wrong types and values
    ['schemaVersion "2"', json({ ...V, schemaVersion: '2' })],
    ['schemaVersion 1', json({ ...V, schemaVersion: 1, mediaType: undefined })],
    ['schemaVersion 3', json({ ...V, schemaVersion: 3 })],
    ['schemaVersion 1e400', withRaw('schemaVersion', '1e400')],
    ['schemaVersion missing', json({ ...V, schemaVersion: undefined })],
    ['config a string', json({ ...V, config: config.digest })],
    ['config an array', json({ ...V, config: [descriptor(OCI_CONFIG, config)] })],
    ['config 100000 arrays deep', withRaw('config', deep('1'))],
    ['config missing', json({ ...V, config: undefined })],
    ['layers an object', json({ ...V, layers: {} })],
    ['layers holding a number', json({ ...V, layers: [1] })],
    ['layers holding null', json({ ...V, layers: [descriptor(OCI_LAYER, layer), null] })],
    ['size "12"', layerWith({ size: String(layer.size) })],
    ['size -1', layerWith({ size: -1 })],
    ['size 1.5', layerWith({ size: 1.5 })],
    ['size 1e400', text(vText.replace(`"size":${layer.size}`, '"size":1e400'))],
    ['size 2^64', text(vText.replace(`"size":${layer.size}`, '"size":18446744073709551616'))],
    ['size true', layerWith({ size: true })],
    ['a digest that is a number', layerWith({ digest: 12 })],
    ['a descriptor without digest', layerWith({ digest: undefined })],
    ['a descriptor mediaType that is no media type', layerWith({ mediaType: 'tarball' })],
    ['mediaType a number', json({ ...V, mediaType: 42 })],
    ['annotations a string', json({ ...V, annotations: 'a=b' })],
    ['an annotation value that is a number', json({ ...V, annotations: { a: 1 } })],
    ['an annotation value 100000 arrays deep', withRaw('annotations', `{"a":${deep('"x"')}}`)],
    ['subject a string', json({ ...V, subject: M.digest })],
    ['urls a string', layerWith({ urls: 'https://example.com' })],
    ['embedded data that is not the config', configWith({ data: Buffer.alloc(config.size, 'x').toString('base64') })],
    // NUL characters in strings (JSON escapes)
    ['a NUL in an annotation value', json({ ...V, annotations: { 'org.example.note': 'a\u0000b' } })],
    ['a NUL as an annotation value', json({ ...V, annotations: { a: '\u0000' } })],
    ['a NUL in an annotation key', json({ ...V, annotations: { 'a\u0000b': 'v' } })],
    ['a NUL in a layer annotation value', layerWith({ annotations: { a: '\u0000' } })],
    ['a NUL in the mediaType after ";"', json({ ...V, mediaType: `${OCI_MANIFEST};\u0000` })],
    ['a NUL in the config mediaType after ";"', configWith({ mediaType: `${OCI_CONFIG};\u0000` })],
    ['a NUL in a layer mediaType after ";"', layerWith({ mediaType: `${OCI_LAYER}; x=\u0000` })],
    ['a NUL in artifactType after ";"', json({ ...V, artifactType: `${REFERRER_TYPE};\u0000` })],
    ['a NUL in a layer url', layerWith({ urls: ['https://example.com/\u0000'] })],
    ['a NUL in an unknown field', json({ ...V, 'x-hostile': '\u0000' })],
    ['a NUL in the subject digest', json({ ...V, subject: { mediaType: OCI_MANIFEST, digest: `${M.digest}\u0000`, size: M.bytes.length } })],
    // media types
    ['a schema 1 mediaType', json({ ...V, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' })],
    ['mediaType text/plain', json({ ...V, mediaType: 'text/plain' })],
    ['an index mediaType on a manifest', json({ ...V, mediaType: OCI_INDEX }), OCI_INDEX],
    ['a Content-Type that contradicts the body', json(V), 'application/vnd.docker.distribution.manifest.v2+json'],
    ['no mediaType and an unknown Content-Type', json({ ...V, mediaType: undefined }), 'application/vnd.oci.artifact.manifest.v1+json'],
    ['a schema 1 manifest', json({ schemaVersion: 1, name: R, tag: 'v1', architecture: 'amd64', fsLayers: [], history: [] }), 'application/vnd.docker.distribution.manifest.v1+json'],
    // references
    ['an unknown config blob', configWith({ digest: unknownSha256() })],
    ['an unknown layer blob', layerWith({ digest: unknownSha256() })],
    ['an unknown sha512 layer', layerWith({ digest: `sha512:${hex(128)}` })],
    ['a layer with a bad digest', layerWith({ digest: `sha256:${hex(63)}` })],
    ['an index with an unknown child', index([{ mediaType: OCI_MANIFEST, digest: unknownSha256(), size: 10 }]), OCI_INDEX],
    ['an index whose child is a blob', index([descriptor(OCI_MANIFEST, config)]), OCI_INDEX],
    // limits
    ['10001 layers', json({ ...V, layers: Array.from({ length: 10_001 }, () => descriptor(OCI_LAYER, layer)) })],
  ];
  for (const [what, body, contentType] of bodies) {
    const statuses = body.length > 1024 * 1024 ? TOO_LARGE : BAD_REQUEST;
    const request = { headers: { 'content-type': contentType ?? OCI_MANIFEST }, body };
    add('manifest PUT', `body with ${what}, on the seeded tag`, `/v2/${R}/manifests/${target.tag}`, statuses, request);
    add('manifest PUT', `body with ${what}, on a new tag`, `/v2/${R}/manifests/hostile`, statuses, request);
    add('manifest PUT', `body with ${what}, by its digest`, `/v2/${R}/manifests/${sha256(body)}`, statuses, request);
  }
  add('manifest PUT', 'body of 4 MiB + 1 byte', `/v2/${R}/manifests/${target.tag}`, TOO_LARGE, {
    headers: asManifest,
    body: text(vText.padEnd(4 * 1024 * 1024 + 1, ' ')),
  });
  add('manifest PUT', 'body of 5 MiB of "x"', `/v2/${R}/manifests/${target.tag}`, TOO_LARGE, {
    headers: asManifest,
    body: Buffer.alloc(5 * 1024 * 1024, 'x'),
  });
  add(
    'manifest PUT',
    'a digest reference that does not match the body',
    `/v2/${R}/manifests/${sha256(`${M.bytes} `)}`,
    BAD_REQUEST,
    seededManifest,
  );
  add(
    'manifest PUT',
    'a sha512 reference that does not match the body',
    `/v2/${R}/manifests/sha512:${hex(128)}`,
    BAD_REQUEST,
    seededManifest,
  );
  add('manifest PUT', 'the seeded manifest digest over another body', `/v2/${R}/manifests/${M.digest}`, BAD_REQUEST, {
    headers: asManifest,
    body: json({ ...V, annotations: { hostile: 'yes' } }),
  });
  add(
    'manifest PUT',
    'the seeded manifest in a repository without its blobs',
    `/v2/${OTHER}/manifests/v1`,
    REFUSED,
    seededManifest,
  );
  add(
    'manifest PUT',
    'an index of the seeded manifest in a repository without it',
    `/v2/${OTHER}/manifests/index`,
    REFUSED,
    {
      headers: { 'content-type': OCI_INDEX },
      body: index([{ mediaType: OCI_MANIFEST, digest: M.digest, size: M.bytes.length }]),
    },
  );

  // --- upload ids -------------------------------------------------------------------------------
  // A session id of another shape may be refused (400); a well-formed id of no session here is 404.
  const unknownId = uuid();
  // prettier-ignore
  const badIds: [string, string, string, readonly number[]][] = [
    ['"XYZ"', R, 'XYZ', REFUSED],
    ['"not-a-uuid"', R, 'not-a-uuid', REFUSED],
    ['".."', R, '..', REFUSED],
    ['an encoded ".."', R, '%2e%2e', REFUSED],
    ['%00', R, '%00', REFUSED],
    ['the session id with a trailing %00', R, `${session}%00`, REFUSED],
    ['the session id with a trailing "x"', R, `${session}x`, REFUSED],
    ['the session id without its last character', R, session.slice(0, -1), REFUSED],
    ['300 characters', R, 'u'.repeat(300), REFUSED],
    ['"-1"', R, '-1', REFUSED],
    ['an unknown uuid in upper case', R, unknownId.toUpperCase(), REFUSED],
    ['an unknown uuid without dashes', R, unknownId.replaceAll('-', ''), REFUSED],
    ['an unknown uuid in braces', R, `%7B${unknownId}%7D`, REFUSED],
    ['an unknown uuid', R, unknownId, NOT_FOUND],
    ['the nil uuid', R, '00000000-0000-0000-0000-000000000000', NOT_FOUND],
    ['the max uuid', R, 'ffffffff-ffff-ffff-ffff-ffffffffffff', NOT_FOUND],
    ['the session id in a repository that does not exist', OTHER, session, NOT_FOUND],
    ['the session id in a sub-repository', `${R}/sub`, session, NOT_FOUND],
  ];
  for (const [what, repo, id, statuses] of badIds) {
    const path = `/v2/${repo}/blobs/uploads/${id}`;
    add('upload GET', `upload id ${what}`, path, statuses);
    add('upload PATCH', `upload id ${what}`, path, statuses, chunkAt(0));
    add('upload PUT', `upload id ${what}`, `${path}?digest=${sha256(five)}`, statuses, { headers: octet, body: five });
    add('upload DELETE', `upload id ${what}`, path, statuses);
  }
  // `uploads` glued to more characters is a blob path with a bad digest, not an upload session.
  for (const [what, glued] of [
    ['"uploadsXYZ"', 'uploadsXYZ'],
    ['"uploads" glued to the session id', `uploads${session}`],
  ]) {
    const path = `/v2/${R}/blobs/${glued}`;
    add('blob GET', what, path, REFUSED);
    add('blob HEAD', what, path, REFUSED);
    add('blob DELETE', what, path, REFUSED);
    add('blob PATCH', what, path, NO_SUCH_METHOD, chunkAt(size));
    add('blob PUT', what, `${path}?digest=${sha256(five)}`, NO_SUCH_METHOD, { headers: octet, body: five });
    add('blob POST', what, path, NO_SUCH_METHOD);
  }

  // --- methods a route does not have, and paths that are no route ---------------------------------
  const small = { headers: octet, body: Buffer.from('hostile') };
  // prettier-ignore
  const methods: [HostileOperation, string, CaseExtra?][] = [
    ['base POST', '/v2/', small],
    ['base PUT', '/v2/', small],
    ['base PATCH', '/v2/', small],
    ['base DELETE', '/v2/'],
    ['catalog POST', '/v2/_catalog', small],
    ['catalog PUT', '/v2/_catalog', small],
    ['catalog DELETE', '/v2/_catalog'],
    ['tags POST', `/v2/${R}/tags/list`, small],
    ['tags PUT', `/v2/${R}/tags/list`, small],
    ['tags DELETE', `/v2/${R}/tags/list`],
    ['manifest POST', `/v2/${R}/manifests/${target.tag}`, seededManifest],
    ['manifest PATCH', `/v2/${R}/manifests/${target.tag}`, seededManifest],
    ['referrers PUT', `/v2/${R}/referrers/${M.digest}`, { headers: asManifest, body: target.referrer.bytes }],
    ['referrers POST', `/v2/${R}/referrers/${M.digest}`, small],
    ['referrers DELETE', `/v2/${R}/referrers/${M.digest}`],
    ['blob PUT', `/v2/${R}/blobs/${config.digest}`, { headers: octet, body: config.bytes }],
    ['blob POST', `/v2/${R}/blobs/${config.digest}`, { headers: octet, body: config.bytes }],
    ['blob PATCH', `/v2/${R}/blobs/${config.digest}`, { headers: octet, body: config.bytes }],
    ['upload-start GET', `/v2/${R}/blobs/uploads/`],
    ['upload-start PUT', `/v2/${R}/blobs/uploads/`, small],
    ['upload-start PATCH', `/v2/${R}/blobs/uploads/`, small],
    ['upload-start DELETE', `/v2/${R}/blobs/uploads/`],
    ['upload POST', up, small],
  ];
  for (const [op, path, extra] of methods) add(op, 'a method the route does not have', path, NO_SUCH_METHOD, extra);
  // prettier-ignore
  for (const [what, path] of [
    ['"/v2//"', '/v2//'],
    ['"/v2/."', '/v2/.'],
    ['"/v2/%00"', '/v2/%00'],
    ['"/v2/_catalog/"', '/v2/_catalog/'],
    ['"/v2/_catalog%00"', '/v2/_catalog%00'],
    ['a name without an endpoint', `/v2/${R}`],
    ['an unknown endpoint', `/v2/${R}/unknown/x`],
    ['"tags/list/x"', `/v2/${R}/tags/list/x`],
    ['an empty manifest reference', `/v2/${R}/manifests/`],
    ['an empty blob digest', `/v2/${R}/blobs/`],
  ]) {
    add('base GET', `path ${what}`, path, REFUSED);
  }

  // --- long query strings, many and huge headers (on requests invalid for another reason) --------
  const manyHeaders = (count: number) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-hostile-${i}`, 'h']));
  const params = (count: number) => Array.from({ length: count }, (_, i) => `p${i}=${i}`).join('&');
  // prettier-ignore
  const heads: [HostileOperation, string, readonly number[]][] = [
    ['manifest GET', `/v2/${R}/manifests/hostile-unknown`, NOT_FOUND],
    ['tags GET', `/v2/${OTHER}/tags/list`, NOT_FOUND],
    ['blob HEAD', `/v2/${R}/blobs/${unknownSha256()}`, NOT_FOUND],
    ['upload-start POST ?digest=', `/v2/${R}/blobs/uploads/?digest=sha256:`, BAD_REQUEST],
  ];
  for (const [op, path, statuses] of heads) {
    const q = path.includes('?') ? '&' : '?';
    add(op, 'a query string of 8 KiB', `${path}${q}x=${'q'.repeat(8 * 1024)}`, statuses);
    add(op, '1000 query parameters', `${path}${q}${params(1000)}`, statuses);
    add(op, '100 headers', path, statuses, { headers: manyHeaders(100) });
    add(op, '800 headers', path, statuses, { headers: manyHeaders(800) });
    add(op, 'a header of 8 KiB', path, statuses, { headers: { 'x-hostile': 'h'.repeat(8 * 1024) } });
    add(op, 'a bearer token of 12 KiB', path, statuses, {
      headers: { authorization: `Bearer ${'t'.repeat(12 * 1024)}` },
    });
  }
  // Heads past Node's default 16 KiB limit are accepted up to http.maxheaderbytes (1 MiB, as the
  // reference registry); beyond it, 431 with the OCI body.
  const unknownManifest = `/v2/${R}/manifests/hostile-unknown`;
  add('manifest GET', 'a query string of 20 KiB', `${unknownManifest}?x=${'q'.repeat(20 * 1024)}`, NOT_FOUND);
  add('manifest GET', 'a query string of 100 KiB', `${unknownManifest}?x=${'q'.repeat(100 * 1024)}`, NOT_FOUND);
  add('manifest GET', 'a header of 20 KiB', unknownManifest, NOT_FOUND, {
    headers: { 'x-hostile': 'h'.repeat(20 * 1024) },
  });
  add('manifest GET', 'a header of 1.1 MiB', unknownManifest, HEAD_TOO_LARGE, {
    headers: { 'x-hostile': 'h'.repeat(1100 * 1024) },
  });

  // --- seeded variants: the same invalid requests with harmless noise ------------------------------
  const fixed = [...cases];
  for (let i = 1; i <= (options.variants ?? 150); i++) {
    const from = fixed[Math.floor(rand() * fixed.length)];
    const noise: Record<string, string> = { [`x-hostile-noise-${hex(4)}`]: hex(16) };
    if (rand() < 0.5) noise['user-agent'] = `hostile/${hex(6)}`;
    if (rand() < 0.3) noise['x-request-id'] = uuid();
    push({ ...from, label: `${from.label} ~ noise #${i}`, headers: { ...from.headers, ...noise } });
  }
  return shuffle(cases, rand);
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** The operations the suite must cover, as {@link hostileCoverage} names them. */
export const HOSTILE_REQUIRED_COVERAGE: readonly string[] = [
  'base GET',
  'base POST',
  'catalog GET',
  'tags GET',
  'manifest GET',
  'manifest HEAD',
  'manifest PUT',
  'manifest DELETE',
  'referrers GET',
  'blob GET',
  'blob HEAD',
  'blob DELETE',
  'upload-start POST plain',
  'upload-start POST ?digest=',
  'upload-start POST ?mount=&from=',
  'upload GET',
  'upload PATCH',
  'upload PUT',
  'upload DELETE',
];

/** How many cases aim at each operation (`route method`, with the form for upload starts). */
export function hostileCoverage(cases: readonly HostileCase[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of cases) {
    const op = `${c.route} ${c.method}${c.form ? ` ${c.form}` : ''}`;
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

/** A defect the hostile suite finds, and the deployments it shows in. */
export interface KnownDefect {
  defect: string;
  deployments: readonly ('embedded' | 'split')[];
}

/**
 * The cases that fail today because of registry defects, by case label (a noisy variant counts
 * as its original). Each is a bug to fix in the registry, after which its entries go: THIS LIST
 * MUST END EMPTY. The suite fails when a listed case passes, so the list stays exact.
 */
export const KNOWN_DEFECTS: Readonly<Record<string, KnownDefect>> = {};
