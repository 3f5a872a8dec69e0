import {
  DEFAULT_MAX_MANIFEST_SIZE,
  DigestInvalidError,
  digestOf,
  DigestUnsupportedError,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE,
  DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE,
  ManifestError,
  ManifestErrorCode,
  ManifestInvalidError,
  ManifestTooLargeError,
  OCI_EMPTY_DIGEST,
  OCI_EMPTY_MEDIA_TYPE,
  OCI_EMPTY_SIZE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  parseManifest,
  ParsedManifest,
  ParseManifestOptions,
  SUPPORTED_MANIFEST_MEDIA_TYPES,
} from './index';

// ---------------------------------------------------------------------------------------------
// Fixtures, shaped like those of the OCI distribution-spec conformance suite and real clients.
// ---------------------------------------------------------------------------------------------

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** A descriptor for `content`, with correct digest and size. */
function describe_(mediaType: string, content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType, digest: digestOf(utf8(content)), size: utf8(content).byteLength, ...extra };
}

const IMAGE_CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const configContent = JSON.stringify(
  { author: 'q9Xk2LmPz0RtYw1B', architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
  null,
  '\t',
);
const config = describe_(IMAGE_CONFIG_TYPE, configContent);
const layer = describe_(LAYER_TYPE, 'pretend this is a gzipped tarball');
const artifactA = 'application/vnd.nhl.peanut.butter.bagel';
const blobA = 'NHL Peanut Butter on my NHL bagel';
const emptyJson = { mediaType: OCI_EMPTY_MEDIA_TYPE, digest: OCI_EMPTY_DIGEST, size: OCI_EMPTY_SIZE };

/** The conformance suite's image manifest: embedded config `data` and an unknown descriptor field. */
const conformanceImage = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  config: { ...config, data: base64(configContent), newUnspecifiedField: base64('hello world') },
  layers: [layer],
};
const subjectBytes = JSON.stringify(conformanceImage, null, '\t');
const subject = describe_(OCI_MANIFEST_MEDIA_TYPE, subjectBytes);

/** The conformance suite's empty-layer manifest: no mediaType field, `layers: []`. */
const conformanceEmptyLayers = {
  schemaVersion: 2,
  config: { ...config, data: base64(configContent), newUnspecifiedField: base64('hello world') },
  layers: [],
};

/** Referrers fixture: artifact type carried by config.mediaType. */
const configArtifact = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  config: describe_(artifactA, blobA),
  subject,
  layers: [emptyJson],
  annotations: { 'org.opencontainers.conformance.test': 'test config a' },
};

/** Referrers fixture: `artifactType` set, empty config. */
const layerArtifact = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  artifactType: artifactA,
  config: emptyJson,
  subject,
  layers: [describe_(artifactA, blobA)],
  annotations: { 'org.opencontainers.conformance.test': 'test layer a' },
};

/** Referrers fixture: an index with `artifactType` and `subject`. */
const artifactIndex = {
  schemaVersion: 2,
  mediaType: OCI_INDEX_MEDIA_TYPE,
  artifactType: 'application/vnd.food.stand',
  manifests: [
    describe_(OCI_MANIFEST_MEDIA_TYPE, JSON.stringify(configArtifact)),
    describe_(OCI_MANIFEST_MEDIA_TYPE, JSON.stringify(layerArtifact)),
  ],
  subject,
  annotations: { 'org.opencontainers.conformance.test': 'test index' },
};

/** A multi-platform index as buildx writes it, with an attestation manifest. */
const buildxIndex = {
  schemaVersion: 2,
  mediaType: OCI_INDEX_MEDIA_TYPE,
  manifests: [
    describe_(OCI_MANIFEST_MEDIA_TYPE, 'amd64 manifest', { platform: { architecture: 'amd64', os: 'linux' } }),
    describe_(OCI_MANIFEST_MEDIA_TYPE, 'arm64 manifest', {
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    }),
    describe_(OCI_MANIFEST_MEDIA_TYPE, 'attestation', {
      platform: { architecture: 'unknown', os: 'unknown' },
      annotations: {
        'vnd.docker.reference.digest': digestOf(utf8('amd64 manifest')),
        'vnd.docker.reference.type': 'attestation-manifest',
      },
    }),
  ],
};

const DOCKER_CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const FOREIGN_LAYER_TYPE = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

/** What `docker push` sends. */
const dockerImage = {
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
  config: describe_(DOCKER_CONFIG_TYPE, 'docker config'),
  layers: [describe_(DOCKER_LAYER_TYPE, 'layer one'), describe_(DOCKER_LAYER_TYPE, 'layer two')],
};

/** A Windows image: its base layer is foreign and fetched from `urls`. */
const windowsImage = {
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
  config: describe_(DOCKER_CONFIG_TYPE, 'windows config'),
  layers: [
    describe_(FOREIGN_LAYER_TYPE, 'windows base', { urls: ['https://mcr.microsoft.com/v2/windows/blobs/sha256:0'] }),
    describe_(DOCKER_LAYER_TYPE, 'app layer'),
  ],
};

const dockerList = {
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  manifests: [
    describe_(DOCKER_MANIFEST_MEDIA_TYPE, 'linux/amd64', { platform: { architecture: 'amd64', os: 'linux' } }),
    describe_(DOCKER_MANIFEST_MEDIA_TYPE, 'windows/amd64', {
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.1', 'os.features': ['win32k'] },
    }),
  ],
};

const sha512Layer = {
  mediaType: LAYER_TYPE,
  digest: digestOf(utf8('sha512 layer'), 'sha512'),
  size: utf8('sha512 layer').byteLength,
};

const digestsOf = (descriptors: readonly object[]): unknown[] =>
  descriptors.map((d) => (d as { digest?: unknown }).digest);

// ---------------------------------------------------------------------------------------------
// Valid input
// ---------------------------------------------------------------------------------------------

interface Expected {
  readonly mediaType: string;
  readonly kind: 'manifest' | 'index';
  readonly blobs: readonly unknown[];
  readonly children: readonly unknown[];
  readonly subject?: unknown;
  readonly referrerArtifactType?: string;
}

const asManifest = (blobs: readonly unknown[], referrerArtifactType?: string, subjectDigest?: unknown): Expected => ({
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  kind: 'manifest',
  blobs,
  children: [],
  subject: subjectDigest,
  referrerArtifactType,
});

const asIndex = (
  mediaType: string,
  children: readonly unknown[],
  referrerArtifactType?: string,
  subjectDigest?: unknown,
): Expected => ({
  mediaType,
  kind: 'index',
  blobs: [],
  children,
  subject: subjectDigest,
  referrerArtifactType,
});

/** Body (object, serialised with tabs like the conformance suite, or raw text), Content-Type, expectation. */
// One case per line, so the table reads as a table.
// prettier-ignore
const VALID: [string, unknown, string | undefined, Expected][] = [
  ['conformance image manifest with embedded config data and an unknown field', conformanceImage, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
  ['conformance manifest without mediaType and with layers: []', conformanceEmptyLayers, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['artifact typed by config.mediaType, with subject', configArtifact, OCI_MANIFEST_MEDIA_TYPE, asManifest([digestOf(utf8(blobA)), OCI_EMPTY_DIGEST], artifactA, subject.digest)],
  ['artifact with artifactType, empty config and subject', layerArtifact, OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  ['index with artifactType and subject', artifactIndex, OCI_INDEX_MEDIA_TYPE, asIndex(OCI_INDEX_MEDIA_TYPE, digestsOf(artifactIndex.manifests), 'application/vnd.food.stand', subject.digest)],
  ['buildx multi-platform index with an attestation', buildxIndex, OCI_INDEX_MEDIA_TYPE, asIndex(OCI_INDEX_MEDIA_TYPE, digestsOf(buildxIndex.manifests))],
  ['docker schema 2 manifest', dockerImage, DOCKER_MANIFEST_MEDIA_TYPE, { ...asManifest(digestsOf([dockerImage.config, ...dockerImage.layers]), DOCKER_CONFIG_TYPE), mediaType: DOCKER_MANIFEST_MEDIA_TYPE }],
  ['docker schema 2 manifest without mediaType field, named by Content-Type', { ...dockerImage, mediaType: undefined }, DOCKER_MANIFEST_MEDIA_TYPE, { ...asManifest(digestsOf([dockerImage.config, ...dockerImage.layers]), DOCKER_CONFIG_TYPE), mediaType: DOCKER_MANIFEST_MEDIA_TYPE }],
  ['docker schema 2 Windows manifest: foreign layer with urls is not a blob reference', windowsImage, DOCKER_MANIFEST_MEDIA_TYPE, { ...asManifest(digestsOf([windowsImage.config, windowsImage.layers[1]]), DOCKER_CONFIG_TYPE), mediaType: DOCKER_MANIFEST_MEDIA_TYPE }],
  ['docker manifest list with platforms', dockerList, DOCKER_MANIFEST_LIST_MEDIA_TYPE, asIndex(DOCKER_MANIFEST_LIST_MEDIA_TYPE, digestsOf(dockerList.manifests))],
  ['docker manifest list entry without platform', { ...dockerList, manifests: [describe_(DOCKER_MANIFEST_MEDIA_TYPE, 'x')] }, DOCKER_MANIFEST_LIST_MEDIA_TYPE, asIndex(DOCKER_MANIFEST_LIST_MEDIA_TYPE, [digestOf(utf8('x'))])],
  ['docker manifest list with an empty manifests list', { ...dockerList, manifests: [] }, DOCKER_MANIFEST_LIST_MEDIA_TYPE, asIndex(DOCKER_MANIFEST_LIST_MEDIA_TYPE, [])],
  ['OCI manifest inferred from config + layers (no mediaType, no Content-Type)', conformanceEmptyLayers, undefined, asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['OCI manifest inferred from config alone, layers absent', { schemaVersion: 2, config }, undefined, asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['OCI index inferred from manifests (no mediaType, no Content-Type)', { schemaVersion: 2, manifests: buildxIndex.manifests }, undefined, asIndex(OCI_INDEX_MEDIA_TYPE, digestsOf(buildxIndex.manifests))],
  ['empty OCI index', { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [] }, OCI_INDEX_MEDIA_TYPE, asIndex(OCI_INDEX_MEDIA_TYPE, [])],
  ['Content-Type with a charset parameter', conformanceImage, `${OCI_MANIFEST_MEDIA_TYPE}; charset=utf-8`, asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
  ['Content-Type in upper case', conformanceEmptyLayers, OCI_MANIFEST_MEDIA_TYPE.toUpperCase(), asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['generic application/json Content-Type, body names the type', dockerImage, 'application/json', { ...asManifest(digestsOf([dockerImage.config, ...dockerImage.layers]), DOCKER_CONFIG_TYPE), mediaType: DOCKER_MANIFEST_MEDIA_TYPE }],
  ['generic application/octet-stream Content-Type, type inferred', conformanceEmptyLayers, 'application/octet-stream', asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['empty Content-Type', conformanceImage, '', asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
  ['empty mediaType field counts as absent', { ...conformanceEmptyLayers, mediaType: '' }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  [
    'null for every optional field',
    {
      ...conformanceEmptyLayers,
      mediaType: null,
      artifactType: null,
      subject: null,
      annotations: null,
      config: { ...config, urls: null, annotations: null, platform: null, artifactType: null, data: null },
    },
    OCI_MANIFEST_MEDIA_TYPE,
    asManifest([config.digest], IMAGE_CONFIG_TYPE),
  ],
  ['null layers in an OCI manifest read as no layers', { ...conformanceEmptyLayers, layers: null }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest], IMAGE_CONFIG_TYPE)],
  ['null annotation value is dropped', { ...layerArtifact, annotations: { a: null, b: 'kept' } }, OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  [
    'unknown fields at every level',
    {
      ...conformanceImage,
      futureField: { nested: [1, 2, 3] },
      config: { ...config, 'x-extension': true },
      layers: [{ ...layer, somethingNew: null }],
    },
    OCI_MANIFEST_MEDIA_TYPE,
    asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE),
  ],
  ['sha512 descriptor digests', { ...conformanceEmptyLayers, layers: [sha512Layer] }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, sha512Layer.digest], IMAGE_CONFIG_TYPE)],
  ['embedded data of an empty blob', { ...conformanceEmptyLayers, layers: [describe_(LAYER_TYPE, '', { data: '' })] }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, digestOf(utf8(''))], IMAGE_CONFIG_TYPE)],
  ['embedded data of the OCI empty blob', { ...layerArtifact, config: { ...emptyJson, data: base64('{}') } }, OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  ['layer repeating the config digest is referenced once', { ...layerArtifact, layers: [emptyJson, emptyJson] }, OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST], artifactA, subject.digest)],
  ['descriptor mediaType with parameters', { ...conformanceEmptyLayers, layers: [{ ...layer, mediaType: `${LAYER_TYPE}; compression=fast` }] }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
  ['an escaped backslash before "u0000" is no NUL character', JSON.stringify({ ...layerArtifact, annotations: { path: 'C:\\u0000' } }), OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  ['other control characters (U+0001, U+001F) in an annotation', { ...layerArtifact, annotations: { a: '\u0001\u001f' } }, OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  ['compact JSON with a unicode annotation', JSON.stringify({ ...layerArtifact, annotations: { title: 'Grüße 🚢' } }), OCI_MANIFEST_MEDIA_TYPE, asManifest([OCI_EMPTY_DIGEST, digestOf(utf8(blobA))], artifactA, subject.digest)],
  ['exactly the size limit', padTo(conformanceImage, DEFAULT_MAX_MANIFEST_SIZE), OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
  ['exactly 10000 layers', { ...conformanceEmptyLayers, layers: Array.from({ length: 10_000 }, () => layer) }, OCI_MANIFEST_MEDIA_TYPE, asManifest([config.digest, layer.digest], IMAGE_CONFIG_TYPE)],
];

/** `manifest` serialised and padded with trailing spaces to exactly `size` bytes. */
function padTo(manifest: unknown, size: number): string {
  const text = JSON.stringify(manifest);
  return text + ' '.repeat(size - utf8(text).byteLength);
}

function toBytes(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  return utf8(typeof body === 'string' ? body : JSON.stringify(body, null, '\t'));
}

describe('parseManifest accepts', () => {
  it.each(VALID)('%s', (_name, body, contentType, expected) => {
    const parsed = parseManifest(toBytes(body), contentType);
    expect(parsed.mediaType).toBe(expected.mediaType);
    expect(parsed.kind).toBe(expected.kind);
    expect(parsed.schemaVersion).toBe(2);
    expect(digestsOf(parsed.blobReferences)).toEqual(expected.blobs);
    expect(digestsOf(parsed.childReferences)).toEqual(expected.children);
    expect(parsed.subject?.digest).toBe(expected.subject);
    expect(parsed.referrerArtifactType).toBe(expected.referrerArtifactType);
    expect(SUPPORTED_MANIFEST_MEDIA_TYPES).toContain(parsed.mediaType);
  });
});

describe('parseManifest result', () => {
  it('carries every field of an artifact manifest', () => {
    const parsed = parseManifest(toBytes(layerArtifact), OCI_MANIFEST_MEDIA_TYPE);
    expect(parsed).toEqual<ParsedManifest>({
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      kind: 'manifest',
      schemaVersion: 2,
      artifactType: artifactA,
      config: emptyJson,
      layers: [describe_(artifactA, blobA) as never],
      manifests: [],
      subject: subject as never,
      annotations: { 'org.opencontainers.conformance.test': 'test layer a' },
      blobReferences: [emptyJson, describe_(artifactA, blobA) as never],
      childReferences: [],
      referrerArtifactType: artifactA,
    });
  });

  it('keeps descriptor extras (urls, annotations, platform, artifactType, data) and drops unknown ones', () => {
    const entry = {
      ...describe_(OCI_MANIFEST_MEDIA_TYPE, '{}'),
      urls: ['https://example.com/x'],
      annotations: { k: 'v' },
      platform: { architecture: 'arm', os: 'linux', variant: 'v7', 'os.features': ['f'], extra: 1 },
      artifactType: 'application/vnd.example+json',
      data: base64('{}'),
      unknown: 'dropped',
    };
    const parsed = parseManifest(toBytes({ schemaVersion: 2, manifests: [entry] }), OCI_INDEX_MEDIA_TYPE);
    expect(parsed.manifests[0]).toEqual({
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: OCI_EMPTY_DIGEST,
      size: 2,
      urls: ['https://example.com/x'],
      annotations: { k: 'v' },
      platform: { architecture: 'arm', os: 'linux', variant: 'v7', 'os.features': ['f'] },
      artifactType: 'application/vnd.example+json',
      data: base64('{}'),
    });
  });

  it('ignores subject, artifactType and annotations in a docker schema 2 manifest', () => {
    const parsed = parseManifest(
      toBytes({ ...dockerImage, subject, artifactType: artifactA, annotations: { a: 'b' } }),
    );
    expect(parsed.subject).toBeUndefined();
    expect(parsed.artifactType).toBeUndefined();
    expect(parsed.annotations).toBeUndefined();
    expect(parsed.referrerArtifactType).toBe(DOCKER_CONFIG_TYPE);
  });

  it('keeps an annotation named __proto__ as an ordinary key', () => {
    const parsed = parseManifest(utf8(`{"schemaVersion":2,"manifests":[],"annotations":{"__proto__":"x","a":"b"}}`));
    expect(Object.getPrototypeOf(parsed.annotations)).toBe(Object.prototype);
    expect(Object.keys(parsed.annotations ?? {})).toEqual(['__proto__', 'a']);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input: each case must give one specific typed error with the right OCI code.
// ---------------------------------------------------------------------------------------------

type ErrorClass =
  | typeof ManifestInvalidError
  | typeof ManifestTooLargeError
  | typeof DigestInvalidError
  | typeof DigestUnsupportedError;

const oci = (patch: Record<string, unknown>): Record<string, unknown> => ({ ...conformanceImage, ...patch });
const ociLayer = (patch: Record<string, unknown>): Record<string, unknown> => oci({ layers: [{ ...layer, ...patch }] });
const ociIndex = (patch: Record<string, unknown>): Record<string, unknown> => ({ ...artifactIndex, ...patch });
const hex64 = 'a'.repeat(64);

/** name, body, Content-Type, options, error class, OCI code, `detail.path` when it names a field. */
type InvalidCase = [
  string,
  unknown,
  string | undefined,
  ParseManifestOptions | undefined,
  ErrorClass,
  ManifestErrorCode,
  string?,
];
// One case per line, so the table reads as a table.
// prettier-ignore
const INVALID: InvalidCase[] = [
  // unreadable bodies
  ['empty body', '', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['truncated JSON', JSON.stringify(conformanceImage).slice(0, 80), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['the conformance suite invalid manifest "blablabla"', 'blablabla', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['a byte-order mark before the JSON', `\uFEFF${JSON.stringify(conformanceImage)}`, OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['two JSON documents', `${JSON.stringify(conformanceImage)}{}`, OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  // not an object
  ['a JSON array', '[]', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['a JSON string', '"manifest"', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['a JSON number', '2', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['JSON null', 'null', OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  // schema version
  ['schemaVersion 1', oci({ schemaVersion: 1, mediaType: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['schemaVersion missing', oci({ schemaVersion: undefined }), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'schemaVersion'],
  ['schemaVersion null', oci({ schemaVersion: null }), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'schemaVersion'],
  ['schemaVersion "2" as a string', oci({ schemaVersion: '2' }), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'schemaVersion'],
  ['schemaVersion 3', oci({ schemaVersion: 3 }), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'schemaVersion'],
  // schema 1
  ['a schema 1 manifest', { schemaVersion: 1, name: 'library/x', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] }, DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['schema 1 Content-Type', oci({ mediaType: undefined }), DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['signed schema 1 Content-Type', oci({ mediaType: undefined }), DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['schema 1 mediaType in the body', oci({ mediaType: DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  // media type
  ['body mediaType OCI manifest, Content-Type docker manifest', conformanceImage, DOCKER_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  ['body mediaType docker list, Content-Type OCI index', dockerList, OCI_INDEX_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  ['body mediaType OCI index, Content-Type OCI manifest', artifactIndex, OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  ['unknown Content-Type, no mediaType field', oci({ mediaType: undefined }), 'application/vnd.oci.artifact.manifest.v1+json', undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['unknown body mediaType', oci({ mediaType: 'application/vnd.example.manifest+json' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['mediaType field that is a number', oci({ mediaType: 42 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  ['no media type anywhere and neither config nor manifests', { schemaVersion: 2, layers: [] }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  ['no media type anywhere and both config and manifests', { schemaVersion: 2, config, manifests: [] }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID'],
  // wrong types and missing fields
  ['OCI manifest without config', oci({ config: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config'],
  ['OCI manifest with config null', oci({ config: null }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config'],
  ['config that is a string', oci({ config: config.digest }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config'],
  ['layers: {}', oci({ layers: {} }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['layers that is a string', oci({ layers: 'x' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['a layer that is a number', oci({ layers: [1] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0]'],
  ['a layer that is null', oci({ layers: [layer, null] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[1]'],
  ['size: "12"', ociLayer({ size: '12' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['negative size', ociLayer({ size: -1 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['non-integer size', ociLayer({ size: 1.5 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['size beyond 2^53', ociLayer({ size: 2 ** 53 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['size true', ociLayer({ size: true }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['size missing', ociLayer({ size: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].size'],
  ['config size negative', oci({ config: { ...config, size: -5 } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.size'],
  ['descriptor without mediaType', ociLayer({ mediaType: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  ['descriptor mediaType that is a number', ociLayer({ mediaType: 7 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  ['descriptor mediaType that is empty', ociLayer({ mediaType: '' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  ['descriptor mediaType that is not type/subtype', ociLayer({ mediaType: 'tarball' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  ['descriptor without digest', ociLayer({ digest: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].digest'],
  ['digest that is a number', ociLayer({ digest: 12 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].digest'],
  ['urls that is a string', ociLayer({ urls: 'https://example.com' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].urls'],
  ['urls holding a number', ociLayer({ urls: ['https://example.com', 3] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].urls[1]'],
  ['descriptor annotations that is an array', ociLayer({ annotations: ['a'] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].annotations'],
  ['descriptor annotation value that is a number', ociLayer({ annotations: { a: 1 } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].annotations.a'],
  ['top-level annotation value that is an object', oci({ annotations: { a: {} } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations.a'],
  ['top-level annotations that is a string', oci({ annotations: 'a=b' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations'],
  ['platform that is a string', ociIndex({ manifests: [{ ...subject, platform: 'linux/amd64' }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].platform'],
  ['platform.os that is a number', ociIndex({ manifests: [{ ...subject, platform: { os: 1, architecture: 'amd64' } }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].platform.os'],
  ['platform os.features that is a string', ociIndex({ manifests: [{ ...subject, platform: { os: 'windows', 'os.features': 'win32k' } }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].platform.os.features'],
  ['artifactType that is a number', oci({ artifactType: 1 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'artifactType'],
  ['artifactType that is not a media type', oci({ artifactType: 'signature' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'artifactType'],
  ['descriptor artifactType that is a number', ociLayer({ artifactType: false }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].artifactType'],
  ['subject that is a string', oci({ subject: subject.digest }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'subject'],
  ['subject without a size', oci({ subject: { ...subject, size: undefined } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'subject.size'],
  ['index subject with a bad digest', ociIndex({ subject: { ...subject, digest: 'sha256:abc' } }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'subject.digest'],
  // digests
  ['layer digest one character short', ociLayer({ digest: `sha256:${hex64.slice(1)}` }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['layer digest one character long', ociLayer({ digest: `sha256:${hex64}0` }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['layer digest in upper case', ociLayer({ digest: `sha256:${hex64.toUpperCase()}` }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['layer digest with an upper-case algorithm', ociLayer({ digest: `SHA256:${hex64}` }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['layer digest without an algorithm', ociLayer({ digest: hex64 }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['sha512 digest with sha256 length', ociLayer({ digest: `sha512:${hex64}` }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['layer digest of an unknown algorithm', ociLayer({ digest: `sha384:${'c'.repeat(96)}` }), undefined, undefined, DigestUnsupportedError, 'DIGEST_INVALID', 'layers[0].digest'],
  ['config digest of md5', oci({ config: { ...config, digest: 'md5:d41d8cd98f00b204e9800998ecf8427e' } }), undefined, undefined, DigestUnsupportedError, 'DIGEST_INVALID', 'config.digest'],
  ['index child digest of the wrong length', ociIndex({ manifests: [{ ...subject, digest: `sha256:${hex64}${hex64}` }] }), undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'manifests[0].digest'],
  // embedded data
  ['data that is not base64', oci({ config: { ...config, data: 'not base64!' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.data'],
  ['data without padding', { ...layerArtifact, config: { ...emptyJson, data: 'e30' } }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.data'],
  ['data that is a number', oci({ config: { ...config, data: 5 } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.data'],
  ['data whose length differs from size', { ...layerArtifact, config: { ...emptyJson, data: base64('{ }') } }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.data'],
  ['data whose digest differs from digest', { ...layerArtifact, config: { ...emptyJson, data: base64('[]') } }, undefined, undefined, DigestInvalidError, 'DIGEST_INVALID', 'config.data'],
  // docker schema 2
  ['docker manifest without layers', { ...dockerImage, layers: undefined }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['docker manifest with layers null', { ...dockerImage, layers: null }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['docker manifest without config', { ...dockerImage, config: undefined }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config'],
  ['docker layer without mediaType', { ...dockerImage, layers: [{ ...dockerImage.layers[0], mediaType: undefined }] }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  // indexes
  ['OCI index without manifests', ociIndex({ manifests: undefined }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests'],
  ['OCI index with manifests: {}', ociIndex({ manifests: {} }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests'],
  ['OCI index child with size "1"', ociIndex({ manifests: [{ ...subject, size: '1' }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].size'],
  ['manifests inferred but not an array', { schemaVersion: 2, manifests: 'x' }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests'],
  ['docker list without manifests', { ...dockerList, manifests: undefined }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests'],
  // NUL characters (U+0000): refused in every key and string, known field or not
  ['NUL in a top-level annotation value', oci({ annotations: { 'org.example.note': 'a\0b' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations.org.example.note'],
  ['NUL as a whole annotation value', oci({ annotations: { a: '\0' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations.a'],
  ['NUL in a top-level annotation key', oci({ annotations: { 'a\0b': 'v' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations.a\\u0000b'],
  ['NUL in a 300-character annotation key (path cut to an excerpt)', oci({ annotations: { [`${'k'.repeat(300)}\0`]: 'v' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', `annotations.${'k'.repeat(88)}…`],
  ['NUL in a layer annotation value', ociLayer({ annotations: { a: 'x\0' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].annotations.a'],
  ['NUL in an index annotation value', ociIndex({ annotations: { a: '\0' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'annotations.a'],
  ['NUL in the mediaType after ";"', oci({ mediaType: `${OCI_MANIFEST_MEDIA_TYPE};\0` }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  ['NUL in a layer mediaType parameter', ociLayer({ mediaType: `${LAYER_TYPE}; x=\0` }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].mediaType'],
  ['NUL in the config mediaType parameter', oci({ config: { ...config, mediaType: `${IMAGE_CONFIG_TYPE};\0` } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.mediaType'],
  ['NUL in an artifactType parameter', oci({ artifactType: `${artifactA};\0` }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'artifactType'],
  ['NUL in a descriptor artifactType', ociIndex({ manifests: [{ ...subject, artifactType: `${artifactA};\0` }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].artifactType'],
  ['NUL in a layer url', ociLayer({ urls: ['https://example.com/ok', 'https://example.com/\0'] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers[0].urls[1]'],
  ['NUL in an index platform os', ociIndex({ manifests: [{ ...subject, platform: { os: 'linux\0', architecture: 'amd64' } }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].platform.os'],
  ['NUL in a platform os.features entry', ociIndex({ manifests: [{ ...subject, platform: { os: 'windows', 'os.features': ['\0'] } }] }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests[0].platform.os.features[0]'],
  ['NUL after a valid subject digest', oci({ subject: { ...subject, digest: `${subject.digest}\0` } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'subject.digest'],
  ['NUL in embedded data', oci({ config: { ...config, data: '\0' } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'config.data'],
  ['NUL in an unknown top-level field', oci({ 'x-extra': '\0' }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'x-extra'],
  ['NUL in an unknown field key', oci({ '\0': 1 }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', '\\u0000'],
  ['NUL deep in an unknown nested value', oci({ extra: { list: [[1, 'ok', 'no\0']] } }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'extra.list[0][2]'],
  ['NUL at the bottom of 100000 nested arrays', `{"schemaVersion":2,"x":${'['.repeat(100_000)}"\\u0000"${']'.repeat(100_000)}}`, OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestInvalidError, 'MANIFEST_INVALID', `x${'[0]'.repeat(33)}…`],
  ['NUL in the mediaType of a schema 1 manifest (NUL is found first)', { schemaVersion: 1, mediaType: `${DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE};\0` }, undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'mediaType'],
  // limits
  ['100001 layers', oci({ layers: Array.from({ length: 100_001 }, () => ({})) }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['10001 layers', oci({ layers: Array.from({ length: 10_001 }, () => layer) }), undefined, { maxSize: Infinity }, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['10001 index entries', ociIndex({ manifests: Array.from({ length: 10_001 }, () => 0) }), undefined, undefined, ManifestInvalidError, 'MANIFEST_INVALID', 'manifests'],
  ['more layers than maxDescriptors', oci({ layers: [layer, layer] }), undefined, { maxDescriptors: 1 }, ManifestInvalidError, 'MANIFEST_INVALID', 'layers'],
  ['one byte over 4 MiB', padTo(conformanceImage, DEFAULT_MAX_MANIFEST_SIZE + 1), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestTooLargeError, 'SIZE_INVALID'],
  ['over 4 MiB of garbage (size is checked first)', 'x'.repeat(DEFAULT_MAX_MANIFEST_SIZE + 100), OCI_MANIFEST_MEDIA_TYPE, undefined, ManifestTooLargeError, 'SIZE_INVALID'],
  ['over a custom maxSize', conformanceImage, OCI_MANIFEST_MEDIA_TYPE, { maxSize: 100 }, ManifestTooLargeError, 'SIZE_INVALID'],
];

describe('parseManifest refuses', () => {
  // A rest parameter keeps jest from mistaking the optional last column for a `done` callback.
  it.each(INVALID)('%s', (...[, body, contentType, options, errorClass, code, path]: InvalidCase) => {
    const error = captureError(() => parseManifest(toBytes(body), contentType, options));
    expect(error).toBeInstanceOf(errorClass);
    if (errorClass === DigestInvalidError) expect(error).not.toBeInstanceOf(DigestUnsupportedError);
    expect(isTypedError(error)).toBe(true);
    const manifestError = error as ManifestError | DigestInvalidError;
    expect(manifestError.ociCode).toBe(code);
    expect(manifestError.name).toBe(errorClass.name);
    expect(manifestError.message).not.toBe('');
    if (path !== undefined) expect(manifestError.detail?.path).toBe(path);
    const detail = manifestError.detail ?? {};
    expect(JSON.parse(JSON.stringify(detail))).toEqual(detail);
    expect(JSON.stringify(detail).length).toBeLessThan(1000);
  });

  it('says schema 1 is not supported', () => {
    expect(() => parseManifest(toBytes({ schemaVersion: 1 }), DOCKER_SCHEMA1_SIGNED_MANIFEST_MEDIA_TYPE)).toThrow(
      /schema 1/,
    );
  });

  it('reports size and limit of an oversized manifest', () => {
    const error = captureError(() =>
      parseManifest(new Uint8Array(101), undefined, { maxSize: 100 }),
    ) as ManifestTooLargeError;
    expect(error).toMatchObject({ size: 101, limit: 100, detail: { size: 101, limit: 100 } });
  });

  it('reports count and limit of an enormous array', () => {
    const error = captureError(() =>
      parseManifest(toBytes(oci({ layers: Array.from({ length: 100_001 }, () => ({})) }))),
    ) as ManifestError;
    expect(error.detail).toMatchObject({ path: 'layers', count: 100_001, limit: 10_000 });
  });

  it('refuses 100001 layers quickly', () => {
    const body = toBytes(oci({ layers: Array.from({ length: 100_001 }, () => layer) }));
    const started = Date.now();
    expect(() => parseManifest(body, undefined, { maxSize: Infinity })).toThrow(ManifestInvalidError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each<[string, ParseManifestOptions]>([
    ['negative maxSize', { maxSize: -1 }],
    ['NaN maxSize', { maxSize: NaN }],
    ['fractional maxDescriptors', { maxDescriptors: 1.5 }],
  ])('treats %s as a programming error (RangeError)', (_name, options) => {
    expect(() => parseManifest(toBytes(conformanceImage), undefined, options)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Robustness: whatever the bytes, only typed errors (ManifestError subclasses, DigestInvalidError) come out.
// ---------------------------------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32) so any failure is reproducible from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRANGE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 60,
  '',
  'x',
  'sha256:',
  `sha256:${hex64}`,
  `SHA256:${hex64}`,
  'md5:abc',
  '!!',
  [],
  [null],
  [{}],
  {},
  { a: null },
  { __proto__: 1 },
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+json',
  'toString',
  'constructor',
];

/** Replaces one randomly chosen value somewhere in `value` with a strange one. */
function mutate(value: unknown, random: () => number): unknown {
  if (random() < 0.25 || value === null || typeof value !== 'object')
    return STRANGE_VALUES[Math.floor(random() * STRANGE_VALUES.length)];
  if (Array.isArray(value)) {
    if (value.length === 0) return [mutate(undefined, random)];
    const copy = [...value];
    const i = Math.floor(random() * copy.length);
    copy[i] = mutate(copy[i], random);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const key =
    random() < 0.1 || keys.length === 0
      ? ['toString', 'constructor', 'hasOwnProperty', 'data', 'platform'][Math.floor(random() * 5)]
      : keys[Math.floor(random() * keys.length)];
  copy[key] = mutate(copy[key], random);
  return copy;
}

const SEEDS: unknown[] = [
  conformanceImage,
  conformanceEmptyLayers,
  configArtifact,
  layerArtifact,
  artifactIndex,
  buildxIndex,
  dockerImage,
  windowsImage,
  dockerList,
];
const CONTENT_TYPES = [
  undefined,
  '',
  'application/json',
  ...SUPPORTED_MANIFEST_MEDIA_TYPES,
  DOCKER_SCHEMA1_MANIFEST_MEDIA_TYPE,
  'text/html; charset=utf-8',
];

describe('parseManifest robustness', () => {
  it.each([1, 2, 3, 4, 5])('accepts or throws a typed error for 1000 structural mutations (seed %i)', (seed) => {
    const random = prng(seed);
    const outcomes = { accepted: 0, refused: 0 };
    for (let i = 0; i < 1000; i++) {
      const body = mutate(SEEDS[i % SEEDS.length], random);
      const contentType = CONTENT_TYPES[Math.floor(random() * CONTENT_TYPES.length)];
      const accepted = acceptedOrTypedError(() => parseManifest(toBytes(body), contentType), `seed ${seed}, #${i}`);
      outcomes[accepted ? 'accepted' : 'refused']++;
    }
    // Both outcomes occur, so the mutations exercise the parser rather than one early check.
    expect(outcomes.accepted).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });

  it.each([11, 12, 13])('accepts or throws a typed error for 1000 byte-level corruptions (seed %i)', (seed) => {
    const random = prng(seed);
    for (let i = 0; i < 1000; i++) {
      const bytes = Uint8Array.from(toBytes(SEEDS[i % SEEDS.length]));
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? Math.floor(random() * bytes.length) : bytes.length;
      acceptedOrTypedError(() => parseManifest(bytes.subarray(0, cut)), `seed ${seed}, #${i}`);
    }
  });
});

/** The errors this library throws for bad input: its own, and the one error for bad digests. */
function isTypedError(error: unknown): error is ManifestError | DigestInvalidError {
  return error instanceof ManifestError || error instanceof DigestInvalidError;
}

/** Runs `action`; true when it returned, false when it threw a typed error; fails on anything else. */
function acceptedOrTypedError(action: () => unknown, label: string): boolean {
  try {
    action();
    return true;
  } catch (error) {
    if (!isTypedError(error)) throw new Error(`${label}: untyped ${String(error)}`);
    return false;
  }
}

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
