/**
 * OCI image layouts on disk (image-spec `image-layout.md`), built in code for the client tests:
 * a random multi-platform image (an index over per-platform manifests, each with a config and
 * real tar layers, gzip-compressed or not) written as `oci-layout`, `index.json` and
 * `blobs/sha256/<hex>`, and a reader that checks every blob against its name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** The annotation an image layout's `index.json` uses to name (tag) an entry. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** A content-addressed blob with its descriptor fields. */
export interface LayoutBlob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** A platform, as in an index entry. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/** One platform's image: manifest, config and layers. */
export interface PlatformImage {
  platform: Platform;
  manifest: LayoutBlob;
  config: LayoutBlob;
  layers: LayoutBlob[];
}

/** A multi-platform image: the index, its children, and every blob by digest. */
export interface MultiPlatformImage {
  index: LayoutBlob;
  images: PlatformImage[];
  /** Every blob of the image (index, manifests, configs, layers) keyed by digest. */
  blobs: Map<string, LayoutBlob>;
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A blob of `mediaType` holding `bytes`. */
export function layoutBlob(mediaType: string, bytes: Buffer): LayoutBlob {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, bytes };
}

/** The descriptor (`mediaType`, `digest`, `size`) of a blob, plus any extra fields. */
export function descriptorOf(blob: LayoutBlob, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size, ...extra };
}

/**
 * A ustar archive holding one regular file, so layers are real tar streams (clients that look
 * inside a layer find a valid one), with random content that makes each layer unique.
 */
export function tarWithFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, n: number) =>
    field(offset, length, `${n.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, content.length);
  octal(136, 12, 1_700_000_000);
  header.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const b of header) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** Default platforms of {@link randomMultiPlatformImage}. */
export const DEFAULT_PLATFORMS: Platform[] = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
  { architecture: 's390x', os: 'linux' },
];

/**
 * A random multi-platform image: one manifest per platform, each with a config and
 * `layersPerImage` layers (alternately gzip-compressed and plain tar), under an OCI index.
 */
export function randomMultiPlatformImage(
  options: { platforms?: Platform[]; layersPerImage?: number; layerSize?: number } = {},
): MultiPlatformImage {
  const platforms = options.platforms ?? DEFAULT_PLATFORMS;
  const blobs = new Map<string, LayoutBlob>();
  const keep = (b: LayoutBlob) => (blobs.set(b.digest, b), b);
  const images = platforms.map((platform, p): PlatformImage => {
    const layers: LayoutBlob[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < (options.layersPerImage ?? 2); i++) {
      const tar = tarWithFile(`layer-${p}-${i}.bin`, randomBytes(options.layerSize ?? 4096));
      diffIds.push(sha256Digest(tar));
      layers.push(keep(i % 2 === 0 ? layoutBlob(OCI_LAYER_TAR_GZIP, gzipSync(tar)) : layoutBlob(OCI_LAYER_TAR, tar)));
    }
    const config = keep(
      layoutBlob(
        OCI_CONFIG,
        Buffer.from(
          JSON.stringify({
            created: '2024-01-01T00:00:00Z',
            ...platform,
            config: { Env: ['PATH=/usr/bin'], Labels: { nonce: randomBytes(8).toString('hex') } },
            rootfs: { type: 'layers', diff_ids: diffIds },
          }),
        ),
      ),
    );
    const manifest = keep(
      layoutBlob(
        OCI_MANIFEST,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: descriptorOf(config),
            layers: layers.map((l) => descriptorOf(l)),
          }),
        ),
      ),
    );
    return { platform, manifest, config, layers };
  });
  const index = keep(
    layoutBlob(
      OCI_INDEX,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: images.map((img) => descriptorOf(img.manifest, { platform: img.platform })),
        }),
      ),
    ),
  );
  return { index, images, blobs };
}

/** Writes `blobs` as an OCI image layout in `dir`, with `index.json` naming `root` as `tag`. */
export function writeOciLayout(dir: string, blobs: Iterable<LayoutBlob>, root: LayoutBlob, tag: string): void {
  const blobDir = join(dir, 'blobs', 'sha256');
  mkdirSync(blobDir, { recursive: true });
  for (const b of blobs) writeFileSync(join(blobDir, b.digest.slice('sha256:'.length)), b.bytes);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [descriptorOf(root, { annotations: { [REF_NAME]: tag } })],
    }),
  );
}

/** An image layout read back from disk. */
export interface ReadLayout {
  /** The parsed `index.json`. */
  index: { manifests: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] };
  /** Every blob under `blobs/sha256`, by digest. */
  blobs: Map<string, Buffer>;
}

/** Reads the image layout in `dir`; throws when a blob's content does not match its file name. */
export function readOciLayout(dir: string): ReadLayout {
  const layout = JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'));
  if (layout.imageLayoutVersion !== '1.0.0') throw new Error(`${dir}: unexpected oci-layout ${JSON.stringify(layout)}`);
  const blobs = new Map<string, Buffer>();
  const blobDir = join(dir, 'blobs', 'sha256');
  for (const hex of readdirSync(blobDir)) {
    const bytes = readFileSync(join(blobDir, hex));
    const digest = `sha256:${hex}`;
    if (sha256Digest(bytes) !== digest)
      throw new Error(`${dir}: blob ${hex} holds content of digest ${sha256Digest(bytes)}`);
    blobs.set(digest, bytes);
  }
  return { index: JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')), blobs };
}

/** The `index.json` entry of `layout` named `tag`; throws when there is none. */
export function layoutEntry(layout: ReadLayout, tag: string): ReadLayout['index']['manifests'][number] {
  const entry = layout.index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!entry) throw new Error(`no index.json entry named ${tag}: ${JSON.stringify(layout.index)}`);
  return entry;
}
