/**
 * The real-client workload: `crane push` of an OCI image layout and `crane pull` of it back, as
 * users move images. crane comes from the environment (`$CRANE`, set by `scripts/services env`)
 * and runs in a private home (no auth or config in or out).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clientSandbox, toolPath, type ClientSandbox } from '../test/support/clients-tools';
import {
  randomMultiPlatformImage,
  readOciLayout,
  writeOciLayout,
  type MultiPlatformImage,
} from '../test/support/oci-layout';
import { UnexpectedResponseError } from './oci-client';
import type { Target } from './registries';
import { binarySize, mbPerSecond } from './stats';
import { cpuMetricRows, cpuMetrics, cpuSnapshot, type Scale, type Workload } from './workloads';

const CRANE_TIMEOUT_MS = 10 * 60_000;
const TAG = 'bench';

/** The image, written once as a layout and pushed to every target. */
interface ImageOnDisk {
  image: MultiPlatformImage;
  layout: string;
  bytes: number;
}

let sandbox: ClientSandbox | undefined;
let onDisk: ImageOnDisk | undefined;

function imageFor(scale: Scale): ImageOnDisk {
  if (onDisk) return onDisk;
  sandbox ??= clientSandbox('lading-bench-crane-');
  const image = randomMultiPlatformImage({
    platforms: [{ architecture: 'amd64', os: 'linux' }],
    layersPerImage: scale.imageLayers,
    layerSize: scale.imageLayerSize,
  });
  const layout = join(sandbox.dir, 'image');
  writeOciLayout(layout, image.blobs.values(), image.index, TAG);
  const bytes = [...image.blobs.values()].reduce((sum, b) => sum + b.size, 0);
  onDisk = { image, layout, bytes };
  return onDisk;
}

/** Removes the image layout and crane's home; for the end of the run. */
export function removeCraneFiles(): void {
  sandbox?.remove();
  sandbox = undefined;
  onDisk = undefined;
}

/** Whether the workload can run: `$CRANE` is set. */
export function craneAvailable(): boolean {
  return Boolean(process.env.CRANE);
}

/** The image the workload moves, for the report. */
export function describeCraneImage(scale: Scale): string {
  return (
    `one platform (linux/amd64): a config and ${scale.imageLayers} layers, each a tar of one file of ` +
    `${binarySize(scale.imageLayerSize)} random bytes, every other one gzip-compressed, under an OCI index`
  );
}

async function crane(args: string[]): Promise<number> {
  const t0 = performance.now();
  await sandbox!.run(toolPath('CRANE'), ['--insecure', ...args], { timeoutMs: CRANE_TIMEOUT_MS });
  return performance.now() - t0;
}

/** Workload 5 (object-storage suite): crane push and pull of a generated image. */
export const craneImage: Workload = {
  id: 'crane',
  title: 'Image push and pull with crane',
  description:
    '`crane push <layout> <registry>/bench/crane:bench` of an OCI image layout (an index over one image; see the scale), ' +
    'then `crane pull --format=oci` of the tag into an empty directory. Every blob of the pulled layout must match its ' +
    'digest and the pushed image must be there whole (index and every blob). crane runs with its defaults (up to 4 ' +
    'blobs in flight) and follows redirects by itself. Each command is timed as a whole, process start included. ' +
    'No warm-up beyond the workloads before.',
  metrics: [
    { key: 'pushThroughput', label: 'push throughput (MB/s)', better: 'higher', digits: 1, headline: true },
    { key: 'pushSeconds', label: 'push duration (s)', better: 'lower', digits: 2 },
    ...cpuMetricRows('pushCpu', 'CPU time during the push (s)', 2),
    { key: 'pullThroughput', label: 'pull throughput (MB/s)', better: 'higher', digits: 1, headline: true },
    { key: 'pullSeconds', label: 'pull duration (s)', better: 'lower', digits: 2 },
    ...cpuMetricRows('pullCpu', 'CPU time during the pull (s)', 2),
  ],
  async run(target: Target, ctx) {
    const { image, layout, bytes } = imageFor(ctx.scale);
    const ref = `${new URL(target.url).host}/bench/crane:${TAG}`;
    const dst = mkdtempSync(join(sandbox!.dir, 'pulled-'));
    try {
      const cpu0 = cpuSnapshot(target, ctx);
      const pushMs = await crane(['push', layout, ref]);
      const cpu1 = cpuSnapshot(target, ctx);
      const pullMs = await crane(['pull', '--format=oci', ref, dst]);
      const cpu2 = cpuSnapshot(target, ctx);
      const pulled = readOciLayout(dst);
      const missing = [...image.blobs.keys()].filter((digest) => !pulled.blobs.has(digest));
      if (!pulled.index.manifests.some((m) => m.digest === image.index.digest) || missing.length > 0)
        throw new UnexpectedResponseError(
          `crane pull ${ref}: the pulled layout lacks ${missing.length} of the pushed blobs or the index ${image.index.digest}`,
        );
      return {
        pushThroughput: mbPerSecond(bytes, pushMs),
        pushSeconds: pushMs / 1000,
        ...cpuMetrics(cpu0, cpu1, 'pushCpu'),
        pullThroughput: mbPerSecond(bytes, pullMs),
        pullSeconds: pullMs / 1000,
        ...cpuMetrics(cpu1, cpu2, 'pullCpu'),
      };
    } finally {
      rmSync(dst, { recursive: true, force: true });
    }
  },
};
