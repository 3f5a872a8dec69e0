/**
 * Polls `check` (sync or async) every 20 ms until it holds; fails naming `what` after `ms`.
 * Tests wait on state with it, never on a fixed sleep.
 */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 20_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
