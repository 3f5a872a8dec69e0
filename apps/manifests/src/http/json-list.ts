import type { Response } from 'express';

/**
 * Answers 200 with the JSON document `<head>[<items…>]}` whose one array is written batch by batch
 * as `batches` yields them, with backpressure: the next batch is fetched only once the previous one
 * left for the socket. The first batch is fetched before anything is written, so its errors
 * (NAME_UNKNOWN) still become an OCI error response. When the client goes away mid-list the
 * generator is closed (nothing more is fetched) and the response left as it is; an error after the
 * head cuts the connection (the OCI filter), so no client takes a truncated list for a whole one.
 */
export async function streamJsonList(res: Response, head: string, batches: AsyncGenerator<string[], void, undefined>): Promise<void> {
  let next = await batches.next();
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
  let first = true;
  try {
    // A HEAD has its answer (the list exists) once the first batch came back.
    if (res.req.method === 'HEAD') return void res.end();
    while (!next.done) {
      const items = next.value.map((item) => JSON.stringify(item)).join(',');
      if (!res.write(first ? `${head}[${items}` : `,${items}`) && !(await writable(res))) return;
      if (res.destroyed) return;
      first = false;
      next = await batches.next();
    }
    res.end(first ? `${head}[]}` : ']}');
  } finally {
    await batches.return();
  }
}

/** Resolves true when `res` takes more, false when it closed first (the client is gone). */
function writable(res: Response): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (more: boolean) => () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(more);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}
