import type { ServerResponse } from 'node:http';
import { PassThrough, Readable, Writable } from 'node:stream';
import { relayBody } from './v2-exchange';

/** A response stand-in: a Writable that keeps what it got, writing slowly to push back. */
function sink(): { res: ServerResponse; got: () => string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      setImmediate(done);
    },
  });
  return { res: w as unknown as ServerResponse, got: () => Buffer.concat(chunks).toString() };
}

describe('relayBody', () => {
  it('streams every byte in order, ends the response and resolves once it finished', async () => {
    const { res, got } = sink();
    const parts = Array.from({ length: 50 }, (_, i) => `part-${i};`);
    await relayBody(Readable.from(parts.map((p) => Buffer.from(p))), res);
    expect(got()).toBe(parts.join(''));
    expect(res.writableFinished).toBe(true);
  });

  it.each([
    ['the response when the body fails', (body: PassThrough) => body.destroy(new Error('upstream cut')), 'upstream cut', 'res'],
    ['the body when the response closes first', (_b: PassThrough, res: ServerResponse) => res.destroy(), 'closed before the answer was complete', 'body'],
  ] as const)('rejects and destroys %s', async (_what, cut, message, destroyed) => {
    const { res } = sink();
    const body = new PassThrough();
    const relayed = relayBody(body, res);
    body.write('some');
    cut(body, res);
    await expect(relayed).rejects.toThrow(message);
    expect((destroyed === 'res' ? res : body).destroyed).toBe(true);
  });
});
