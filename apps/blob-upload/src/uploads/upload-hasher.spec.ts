import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HashShadow } from './hash-shadow';
import { NativeSha256, ResumedSha256, SHA256_STATE_IMPL } from './upload-hasher';

const sha256 = (...chunks: Buffer[]) => `sha256:${createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}`;

describe('upload hashers and the hashing worker', () => {
  let shadow: HashShadow;
  beforeEach(() => {
    shadow = new HashShadow();
  });
  afterEach(async () => {
    await shadow.close();
  });

  it('tags saved states with the hash-wasm version that is installed and pinned', () => {
    const root = join(__dirname, '../../../..');
    const installed = JSON.parse(readFileSync(join(root, 'node_modules/hash-wasm/package.json'), 'utf8')).version;
    const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies['hash-wasm'];
    expect(SHA256_STATE_IMPL).toBe(`hash-wasm@${installed}/sha256`);
    expect(pinned).toBe(installed);
  });

  it('checkpoints a natively hashed upload so another process continues it to the same digest', async () => {
    const a = randomBytes(3 * 1024 * 1024 + 17);
    const b = randomBytes(65_537);
    const native = new NativeSha256(shadow.open());
    // Odd chunk sizes, and views into a larger pooled buffer: only the view's bytes count.
    const pool = Buffer.concat([randomBytes(100), a, randomBytes(100)]);
    for (let at = 0; at < a.length; at += 99_991) native.update(pool.subarray(100 + at, 100 + Math.min(a.length, at + 99_991)));
    const checkpoint = await native.checkpoint();
    expect(checkpoint).toMatchObject({ impl: SHA256_STATE_IMPL, offset: a.length });
    expect(native.digest()).toBe(sha256(a));

    const resumed = (await ResumedSha256.resume(checkpoint!))!;
    expect(resumed.bytes).toBe(a.length);
    expect(resumed.digest()).toBe(sha256(a));
    resumed.update(b.subarray(0, 10));
    resumed.update(b.subarray(10));
    expect(resumed.digest()).toBe(sha256(a, b));
    // Its own state is the next checkpoint, and a third process continues from that.
    const again = (await ResumedSha256.resume((await resumed.checkpoint())!))!;
    expect(again.bytes).toBe(a.length + b.length);
    expect(again.digest()).toBe(sha256(a, b));
    native.dispose();
  });

  it('checkpoints the empty upload too', async () => {
    const native = new NativeSha256(shadow.open());
    const checkpoint = (await native.checkpoint())!;
    expect(checkpoint.offset).toBe(0);
    expect((await ResumedSha256.resume(checkpoint))!.digest()).toBe(sha256());
  });

  it('keeps many shadows apart, in one worker', async () => {
    const inputs = Array.from({ length: 20 }, () => randomBytes(1000 + Math.floor(Math.random() * 50_000)));
    const hashers = inputs.map(() => new NativeSha256(shadow.open()));
    for (let at = 0; at < 60_000; at += 4096) {
      inputs.forEach((input, i) => at < input.length && hashers[i].update(input.subarray(at, at + 4096)));
    }
    const checkpoints = await Promise.all(hashers.map((h) => h.checkpoint()));
    for (const [i, checkpoint] of checkpoints.entries()) {
      expect((await ResumedSha256.resume(checkpoint!))!.digest()).toBe(sha256(inputs[i]));
    }
  });

  it('stops short rather than queue more than its budget: the checkpoint covers what it hashed, the native digest everything', async () => {
    const small = new HashShadow(1024 * 1024);
    try {
      const native = new NativeSha256(small.open());
      const data = randomBytes(4 * 1024 * 1024);
      // Posted faster than any worker hashes (the worker's answers wait for this loop to end):
      // the first 1 MiB fits the budget, the rest is not shadowed, not even once the worker caught up.
      for (let at = 0; at < data.length; at += 256 * 1024) native.update(data.subarray(at, at + 256 * 1024));
      const short = (await native.checkpoint())!;
      expect(short.offset).toBe(1024 * 1024);
      expect((await ResumedSha256.resume(short))!.digest()).toBe(sha256(data.subarray(0, 1024 * 1024)));
      native.update(data.subarray(0, 10));
      expect((await native.checkpoint())!.offset).toBe(1024 * 1024);
      expect(native.digest()).toBe(sha256(data, data.subarray(0, 10)));
      // The budget is the process's, not the upload's: it frees as the worker catches up (the
      // worker answers in order, so once this save is answered every queued chunk is consumed).
      const next = new NativeSha256(small.open());
      expect((await next.checkpoint())?.offset).toBe(0);
      next.update(data.subarray(0, 1000));
      expect((await next.checkpoint())?.offset).toBe(1000);
    } finally {
      await small.close();
    }
  });

  it('answers null, never a wrong state, once the shadow is closed or the worker is gone', async () => {
    const closed = new NativeSha256(shadow.open());
    closed.update(randomBytes(100));
    closed.dispose();
    expect(await closed.checkpoint()).toBeNull();

    const orphan = new NativeSha256(shadow.open());
    orphan.update(randomBytes(100));
    await shadow.close();
    expect(await orphan.checkpoint()).toBeNull();
    const afterClose = new NativeSha256(shadow.open());
    afterClose.update(randomBytes(10));
    expect(await afterClose.checkpoint()).toBeNull();
  });

  it('refuses a state of another implementation or a corrupt one, so the caller re-hashes', async () => {
    const good = (await new NativeSha256(shadow.open()).checkpoint())!;
    expect(await ResumedSha256.resume({ ...good, impl: 'hash-wasm@0.0.1/sha256' })).toBeUndefined();
    expect(await ResumedSha256.resume({ ...good, state: Buffer.from('not a state') })).toBeUndefined();
  });
});
