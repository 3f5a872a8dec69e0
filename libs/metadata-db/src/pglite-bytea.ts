/**
 * bytea over PGlite without the text blow-up.
 *
 * PGlite's own bytea serializer turns a parameter into `'\x' + Array.from(bytes).map(hex).join('')`:
 * one JavaScript array element and one 2-character string per byte, about 65 bytes of heap per
 * byte of payload (a 3.9 MB manifest raised the peak RSS by about 300 MB, and V8 keeps the grown
 * heap). Its parser decodes hex with a `parseInt` per byte. Yet its Bind message sends any
 * `Uint8Array` value as a binary-format parameter, which the server takes as raw bytes — so the
 * serializer below hands the bytes through untouched, and the parser uses Node's native hex
 * decoder. (node-postgres already does both; this only concerns the embedded database.)
 */
export const BYTEA_OID = 17;

/** The names of a result's bytea columns. */
export function byteaColumns(fields: readonly { name: string; dataTypeID: number }[]): string[] {
  return fields.filter((f) => f.dataTypeID === BYTEA_OID).map((f) => f.name);
}

/**
 * A bytea parameter: bytes go out as a binary parameter (no text); anything else as text. A view
 * that spans its whole ArrayBuffer (a Buffer of 4 KiB or more from `Buffer.alloc*`) is passed as
 * that ArrayBuffer, which PGlite uses as is, where it would first copy a view.
 */
export function serializeByteaParam(value: unknown): Uint8Array | ArrayBuffer | string {
  if (!(value instanceof Uint8Array)) return String(value);
  const whole =
    value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
  return whole ? value.buffer : value;
}

/**
 * A bytea result in text format (`\x` + hex, the server's default `bytea_output`) as a Buffer
 * with an ArrayBuffer of its own (never a slice of Node's shared pool), so the database thread
 * can hand it to the main thread without a copy.
 */
export function parseByteaHex(value: string): Buffer {
  if (!value.startsWith('\\x')) throw new Error('bytea result not in hex format: bytea_output must stay hex');
  const out = Buffer.allocUnsafeSlow((value.length - 2) >>> 1);
  const written = out.write(value.slice(2), 'hex');
  return written === out.length ? out : out.subarray(0, written);
}
