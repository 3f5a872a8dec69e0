/**
 * The steps of an upload at which the robustness tests kill a blob-upload process, to prove that
 * a crash at any of them loses no acknowledged byte and stores no blob under a digest its bytes
 * do not have. In order of an upload's life.
 */
export const CRASH_POINTS = [
  /** A chunk's part is stored; the session does not record it yet. */
  'upload.append.stored',
  /** The session records the chunk (size, parts, hash checkpoint); the client has no answer yet. */
  'upload.append.recorded',
  /** The final digest is verified and recorded as the session's committing digest; no byte moved. */
  'upload.commit.verified',
  /** The S3 driver began composing the blob server-side (a multipart upload at the blob's key) and has not completed it. */
  'storage.compose.started',
  /** The blob is stored under its digest; the database does not link it yet. */
  'upload.commit.stored',
  /** The blob is linked and the session gone; the client has no answer yet. */
  'upload.commit.linked',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const armed = process.env.LADING_TEST_CRASH_AT;
if (armed !== undefined && !(CRASH_POINTS as readonly string[]).includes(armed)) {
  throw new Error(`LADING_TEST_CRASH_AT=${armed} names no crash point (${CRASH_POINTS.join(', ')})`);
}

/**
 * Kills this process with SIGKILL, as `kill -9` would (no cleanup, no answer, nothing flushed),
 * when the test-only environment variable `LADING_TEST_CRASH_AT` names `point`; otherwise does
 * nothing. Read once at start; never set outside the robustness tests.
 */
export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, 'SIGKILL');
}
