import { ByteBudget } from './byte-budget';

const tick = () => new Promise((r) => setImmediate(r));

/** Work that runs until released, recording that it started. */
function gatedWork(started: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    work: async () => {
      started.push(name);
      await done;
      return name;
    },
    finish,
  };
}

describe('ByteBudget', () => {
  it('runs work up to its capacity at once, the rest in arrival order as bytes free up', async () => {
    const budget = new ByteBudget(10);
    const started: string[] = [];
    const a = gatedWork(started, 'a');
    const b = gatedWork(started, 'b');
    const c = gatedWork(started, 'c');
    const d = gatedWork(started, 'd');
    const pa = budget.run(6, a.work);
    const pb = budget.run(6, b.work); // does not fit next to a
    const pc = budget.run(1, c.work); // would fit, but waits behind b (no overtaking)
    const pd = budget.run(50, d.work); // larger than the capacity: runs alone
    await tick();
    expect(started).toEqual(['a']);
    a.finish();
    await expect(pa).resolves.toBe('a');
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    b.finish();
    c.finish();
    await Promise.all([pb, pc]);
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    d.finish();
    await pd;
  });

  it('frees the bytes of work that fails', async () => {
    const budget = new ByteBudget(4);
    await expect(budget.run(4, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(budget.run(4, async () => 'next')).resolves.toBe('next');
  });

  it('refuses a capacity that is not positive', () => {
    expect(() => new ByteBudget(0)).toThrow(RangeError);
  });
});
