import { parseManifest } from '@lading/manifest';
import { asBuffer, type Queryer } from './queryer';

/**
 * What the manifests table keeps of a manifest besides its exact bytes.
 *
 * A manifest's annotations are stored once, in `payload` (the `annotations jsonb` column is
 * gone, dropped by the 1764800000000 migration): a 3.8 MB manifest
 * of 390 annotations made each PUT build a second 3.8 MB JSON text and made the embedded
 * database parse it into jsonb inside its WebAssembly heap (about 19 MB of that heap, which never
 * shrinks), to serve only the referrers API. That API re-derives them from the payload instead.
 */

/**
 * The top-level annotations of a stored manifest, as its PUT parsed them (null values dropped),
 * for a referrers list; undefined when it has none. The payload was validated when it was stored,
 * so this parses it with no size or descriptor limits (they may have been lowered since).
 */
export function storedManifestAnnotations(
  payload: Uint8Array,
  mediaType: string,
): Readonly<Record<string, string>> | undefined {
  try {
    return parseManifest(payload, mediaType, { maxSize: Infinity, maxDescriptors: Infinity }).annotations;
  } catch {
    // Stored before a stricter parser: list the referrer, without annotations.
    return undefined;
  }
}

/**
 * Payloads up to this size are read with their row; larger ones in slices of this size by
 * {@link readPayloadInSlices}. A bytea result comes back as hex text (twice its size) and the
 * drivers buffer the whole message while growing their buffers, so one 3.9 MB payload cost
 * 30-50 MB of transient memory when read in one piece.
 */
export const PAYLOAD_SLICE_BYTES = 256 * 1024;

/**
 * The payload of manifest `manifestId` (`size` bytes), read `PAYLOAD_SLICE_BYTES` at a time into
 * one buffer; undefined if the row disappeared meanwhile (a concurrent delete). A stored payload
 * never changes (rows are inserted once, never updated), so the slices need no transaction.
 */
export async function readPayloadInSlices(
  q: Queryer,
  manifestId: number,
  size: number,
): Promise<Buffer | undefined> {
  const out = Buffer.allocUnsafe(size);
  for (let offset = 0; offset < size; offset += PAYLOAD_SLICE_BYTES) {
    const { rows } = await q.query<{ part: Uint8Array }>(
      'SELECT substring(payload FROM $2 FOR $3) AS part FROM manifests WHERE id = $1',
      [manifestId, offset + 1, PAYLOAD_SLICE_BYTES],
    );
    if (rows.length === 0) return undefined;
    const part = rows[0].part;
    if (part.byteLength !== Math.min(PAYLOAD_SLICE_BYTES, size - offset))
      throw new Error(`manifest ${manifestId}: payload slice at ${offset} has ${part.byteLength} bytes`);
    out.set(part, offset);
  }
  return out;
}

/**
 * A select-list expression for `alias.payload` that is NULL when the payload is larger than a
 * slice; pass the row (with `id`, `size` and that `payload`) to {@link loadPayload}.
 */
export function smallPayloadSql(alias: string): string {
  return `CASE WHEN ${alias}.size <= ${PAYLOAD_SLICE_BYTES} THEN ${alias}.payload END`;
}

/** The payload of a row selected with {@link smallPayloadSql}: as read, or read in slices. */
export async function loadPayload(
  q: Queryer,
  row: { id: number; size: number; payload: Uint8Array | null },
): Promise<Buffer | undefined> {
  return row.payload !== null ? asBuffer(row.payload) : readPayloadInSlices(q, row.id, row.size);
}
