import { createHash, randomBytes } from 'node:crypto';

/** A blob made up for a test: bytes and their digest. */
export interface TestBlob {
  bytes: Buffer;
  digest: string;
  size: number;
}

/** sha256 digest string of `bytes`. */
export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A random blob of `size` bytes. */
export function randomBlob(size = 1024): TestBlob {
  const bytes = randomBytes(size);
  return { bytes, digest: sha256(bytes), size };
}

/** A blob holding exactly `content`. */
export function blobOf(content: Buffer | string): TestBlob {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return { bytes, digest: sha256(bytes), size: bytes.length };
}

/** A random OCI image: a config blob, `layers` layer blobs, and the manifest bytes. */
export interface TestImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: Buffer;
  digest: string;
  mediaType: string;
}

/** Builds a random OCI image manifest (optionally an artifact with a subject). */
export function randomImage(options: { layers?: number; layerSize?: number; subject?: { digest: string; size: number; mediaType: string }; artifactType?: string; annotations?: Record<string, string> } = {}): TestImage {
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layers = Array.from({ length: options.layers ?? 2 }, () => randomBlob(options.layerSize ?? 512));
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  };
  if (options.artifactType) body.artifactType = options.artifactType;
  if (options.subject) body.subject = options.subject;
  if (options.annotations) body.annotations = options.annotations;
  const manifest = Buffer.from(JSON.stringify(body));
  return { config, layers, manifest, digest: sha256(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
}

/** An OCI index over `children` manifests. */
export function indexOf(children: { digest: string; size: number; mediaType: string; platform?: object }[]): { manifest: Buffer; digest: string; mediaType: string } {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((c, i) => ({ ...c, platform: c.platform ?? { architecture: `arch${i}`, os: 'linux' } })),
    }),
  );
  return { manifest, digest: sha256(manifest), mediaType: 'application/vnd.oci.image.index.v1+json' };
}
