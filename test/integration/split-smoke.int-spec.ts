import { randomImage, RegistryTestClient } from '@lading/testing';
import { startSplit, type SplitStack } from '../support/registry-processes';

describe('split mode on PostgreSQL: smoke', () => {
  let stack: SplitStack;
  beforeAll(async () => {
    stack = await startSplit();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers liveness and readiness on all five apps', async () => {
    expect(Object.keys(stack.apps).sort()).toEqual(['blob-upload', 'gateway', 'gc-worker', 'manifests', 'notifications']);
    for (const p of Object.values(stack.apps)) {
      expect((await fetch(`${p.url}/healthz/live`)).status).toBe(200);
      const ready = await fetch(`${p.url}/healthz/ready`);
      expect(ready.status).toBe(200);
      // The gateway keeps no database; every other app checks its own.
      if (p.app !== 'gateway') expect(((await ready.json()) as any).checks.database).toBe('ok');
    }
  });

  it('pushes and pulls an image through the gateway', async () => {
    const c = new RegistryTestClient(stack.url);
    const img = randomImage({ layers: 2, layerSize: 100_000 });
    const put = await c.pushImage('split/app', img, 'v1');
    expect(put.status).toBe(201);
    const get = await c.call('GET', '/v2/split/app/manifests/v1');
    expect(get.body.equals(img.manifest)).toBe(true);
    const layer = await c.call('GET', `/v2/split/app/blobs/${img.layers[0].digest}`);
    expect(layer.body.equals(img.layers[0].bytes)).toBe(true);
    expect((await c.call('GET', '/v2/split/app/tags/list')).json().tags).toEqual(['v1']);
    await c.close();
  });

  it('refuses requests that bypass the gateway', async () => {
    for (const app of ['blob-upload', 'manifests']) {
      const r = await fetch(`${stack.apps[app].url}/v2/split/app/tags/list`);
      expect(r.status).toBe(401);
      expect(((await r.json()) as any).errors[0].code).toBe('UNAUTHORIZED');
    }
  });
});
