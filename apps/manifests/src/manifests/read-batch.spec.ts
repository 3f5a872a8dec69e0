import { ReadBatch } from './read-batch';

/** A read whose calls finish only when the test says, recording the keys of each call. */
function gatedRead() {
  const calls: { keys: readonly string[]; finish: () => void; fail: (e: Error) => void }[] = [];
  const read = (keys: readonly string[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ keys, finish: () => resolve(keys.map((k) => `value of ${k}`)), fail: reject });
    });
  return { calls, read };
}

describe('ReadBatch', () => {
  it('reads a key at once when nothing is in flight', async () => {
    const { calls, read } = gatedRead();
    const batch = new ReadBatch(read, 10);
    const a = batch.get('a');
    expect(calls.map((c) => c.keys)).toEqual([['a']]);
    calls[0].finish();
    await expect(a).resolves.toBe('value of a');
  });

  it('never answers a key from a read that started before it was asked for: it waits for the next read', async () => {
    const { calls, read } = gatedRead();
    const batch = new ReadBatch(read, 10);
    const first = batch.get('tag');
    const later = batch.get('tag');
    const other = batch.get('other');
    expect(calls).toHaveLength(1);
    calls[0].finish();
    await expect(first).resolves.toBe('value of tag');
    expect(calls.map((c) => c.keys)).toEqual([['tag'], ['tag', 'other']]);
    calls[1].finish();
    await expect(later).resolves.toBe('value of tag');
    await expect(other).resolves.toBe('value of other');
  });

  it('reads at most maxBatch keys at a time, in arrival order', async () => {
    const { calls, read } = gatedRead();
    const batch = new ReadBatch(read, 2);
    const all = ['a', 'b', 'c', 'd', 'e'].map((k) => batch.get(k));
    calls[0].finish();
    await all[0];
    calls[1].finish();
    await all[2];
    calls[2].finish();
    await expect(Promise.all(all)).resolves.toEqual(['a', 'b', 'c', 'd', 'e'].map((k) => `value of ${k}`));
    expect(calls.map((c) => c.keys)).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
  });

  it('rejects every key of a failed read with its error, and goes on with the next batch', async () => {
    const { calls, read } = gatedRead();
    const batch = new ReadBatch(read, 10);
    const a = batch.get('a');
    const b = batch.get('b');
    const c = batch.get('c');
    calls[0].fail(new Error('connection lost'));
    await expect(a).rejects.toThrow('connection lost');
    calls[1].fail(new Error('still down'));
    await expect(b).rejects.toThrow('still down');
    await expect(c).rejects.toThrow('still down');
    const d = batch.get('d');
    calls[2].finish();
    await expect(d).resolves.toBe('value of d');
  });

  it('refuses a maxBatch below 1', () => {
    expect(() => new ReadBatch(async () => [], 0)).toThrow(RangeError);
  });
});
