import { loadConfig } from '../config/lading.config';
import { forwardedHeadBytes, httpServerLimits } from './bounded-express.adapter';

describe('httpServerLimits', () => {
  it('takes the defaults of http.*: 1 MiB heads, 60 s idle and head timeouts, no whole-request limit', () => {
    expect(httpServerLimits(loadConfig({}).http)).toEqual({
      maxHeaderBytes: 1024 * 1024,
      idleTimeoutMs: 60_000,
      headersTimeoutMs: 60_000,
      requestTimeoutMs: 0,
    });
  });

  it('takes http.maxheaderbytes and http.timeouts.* from the environment', () => {
    const http = loadConfig({ LADING_HTTP_MAXHEADERBYTES: '65536', LADING_HTTP_TIMEOUTS_IDLE: '2s', LADING_HTTP_TIMEOUTS_REQUEST: '1h' }).http;
    expect(httpServerLimits(http)).toMatchObject({ maxHeaderBytes: 65536, idleTimeoutMs: 2000, requestTimeoutMs: 3_600_000 });
  });

  it('lets a service behind the gateway take the larger head the gateway forwards', () => {
    const http = loadConfig({ LADING_HTTP_MAXHEADERBYTES: '65536' }).http;
    expect(httpServerLimits(http, 'forwarded').maxHeaderBytes).toBe(forwardedHeadBytes(65536));
    expect(forwardedHeadBytes(65536)).toBeGreaterThan(3 * 65536);
  });

  it('refuses an idle timeout of 0', () => {
    expect(() => loadConfig({ LADING_HTTP_TIMEOUTS_IDLE: '0s' })).toThrow(/http\.timeouts\.idle/);
  });
});
