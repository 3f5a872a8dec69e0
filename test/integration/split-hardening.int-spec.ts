import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBlob, RegistryTestClient, type TestBlob } from '@lading/testing';
import { startSplit, type SplitStack } from '../support/registry-processes';
import { openSession } from '../support/robustness-stack';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Runs curl with `args`; resolves with the status code it printed (`-w %{http_code}`) and its stderr. */
async function curl(args: string[]): Promise<{ status: number; stderr: string }> {
  const { stdout, stderr } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-v', ...args], {
    maxBuffer: 16 * MiB,
  });
  return { status: Number(stdout.trim()), stderr };
}

describe('split mode hardening', () => {
  let stack: SplitStack;
  let c: RegistryTestClient;
  let scratch: string;
  beforeAll(async () => {
    stack = await startSplit({ withWorkers: false });
    c = new RegistryTestClient(stack.url);
    scratch = mkdtempSync(join(tmpdir(), 'lading-hardening-'));
  });
  afterAll(async () => {
    await c?.close();
    await stack?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe('Expect: 100-continue (curl sends it on bodies over 1 MB)', () => {
    /** Writes `blob` to a scratch file for curl to send. */
    function fileOf(blob: TestBlob): string {
      const file = join(scratch, blob.digest.slice(7, 19));
      writeFileSync(file, blob.bytes);
      return file;
    }

    /** Expects the blob to read back whole from `name`. */
    async function expectReadsBack(name: string, blob: TestBlob): Promise<void> {
      const get = await c.call('GET', `/v2/${name}/blobs/${blob.digest}`);
      expect(get.status).toBe(200);
      expect(get.headers['docker-content-digest']).toBe(blob.digest);
      expect(get.body.equals(blob.bytes)).toBe(true);
    }

    it('takes a PATCH of 2 MiB sent with curl -T, then the closing PUT', async () => {
      const name = 'hardening/expect-patch';
      const blob = randomBlob(2 * MiB);
      const session = await openSession(c, name);
      const patch = await curl(['-X', 'PATCH', '-T', fileOf(blob), '-H', 'Content-Type: application/octet-stream', `${stack.url}${session.location}`]);
      expect(patch.stderr).toMatch(/> Expect: 100-continue/i);
      expect(patch.status).toBe(202);
      const sep = session.location.includes('?') ? '&' : '?';
      const put = await c.call('PUT', `${session.location}${sep}digest=${blob.digest}`);
      expect(put.status).toBe(201);
      await expectReadsBack(name, blob);
    });

    it('takes a closing PUT of 2 MiB sent with curl -T', async () => {
      const name = 'hardening/expect-put';
      const blob = randomBlob(2 * MiB);
      const session = await openSession(c, name);
      const sep = session.location.includes('?') ? '&' : '?';
      const put = await curl(['-T', fileOf(blob), '-H', 'Content-Type: application/octet-stream', `${stack.url}${session.location}${sep}digest=${blob.digest}`]);
      expect(put.stderr).toMatch(/> Expect: 100-continue/i);
      expect(put.status).toBe(201);
      await expectReadsBack(name, blob);
    });

    it('takes a monolithic POST of 2 MiB sent with curl --data-binary @file', async () => {
      const name = 'hardening/expect-post';
      const blob = randomBlob(2 * MiB);
      const post = await curl([
        '--data-binary',
        `@${fileOf(blob)}`,
        '-H',
        'Content-Type: application/octet-stream',
        `${stack.url}/v2/${name}/blobs/uploads/?digest=${blob.digest}`,
      ]);
      expect(post.stderr).toMatch(/> Expect: 100-continue/i);
      expect(post.status).toBe(201);
      await expectReadsBack(name, blob);
    });
  });
});
