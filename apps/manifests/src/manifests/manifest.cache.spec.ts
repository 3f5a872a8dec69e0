import { loadConfig } from '@lading/nest-common';
import { ManifestCache } from './manifest.cache';

const m = (digest: string, size = 10) => ({ digest, mediaType: 'x/y', payload: Buffer.alloc(size), size });

describe('ManifestCache', () => {
  it('serves what it was given until the repository is written to', () => {
    const c = new ManifestCache(loadConfig({}));
    c.set('a', 'v1', m('d1'), c.generation('a'));
    expect(c.get('a', 'v1')?.digest).toBe('d1');
    c.invalidate('a');
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('does not keep a read that raced a write', () => {
    const c = new ManifestCache(loadConfig({}));
    const before = c.generation('a');
    c.invalidate('a'); // a write happened while the read was in flight
    c.set('a', 'v1', m('old'), before);
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('leaves other repositories alone', () => {
    const c = new ManifestCache(loadConfig({}));
    c.set('a', 'v1', m('d1'), 0);
    c.set('b', 'v1', m('d2'), 0);
    c.invalidate('a');
    expect(c.get('b', 'v1')?.digest).toBe('d2');
  });

  it('is off when the database is shared (another process may write)', () => {
    const c = new ManifestCache(loadConfig({ LADING_DATABASE_URL: 'postgres://x@localhost/db' }));
    c.set('a', 'v1', m('d1'), 0);
    expect(c.get('a', 'v1')).toBeUndefined();
  });

  it('evicts the least recently used entries past its byte budget', () => {
    const c = new ManifestCache(loadConfig({}));
    for (let i = 0; i < 20; i++) c.set('a', `t${i}`, m(`d${i}`, 4 * 1024 * 1024), 0);
    expect(c.get('a', 't0')).toBeUndefined();
    expect(c.get('a', 't19')?.digest).toBe('d19');
  });
});
