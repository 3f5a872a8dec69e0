import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { Client } from 'undici';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer';

/** An HTTP server that answers every request with its own name. */
async function namedServer(name: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(name));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

/** One GET on a connection of its own: the body, or `failed`. */
async function getAlone(url: string): Promise<string> {
  const client = new Client(url);
  try {
    const res = await client.request({ method: 'GET', path: '/' });
    return await res.body.text();
  } catch {
    return 'failed';
  } finally {
    await client.destroy();
  }
}

describe('the round-robin TCP balancer of the test stacks', () => {
  let a: { url: string; server: Server };
  let b: { url: string; server: Server };
  let balancer: TcpBalancer;
  beforeAll(async () => {
    [a, b] = await Promise.all([namedServer('a'), namedServer('b')]);
    balancer = await startTcpBalancer([a.url, b.url]);
  });
  afterAll(async () => {
    await balancer?.stop();
    for (const s of [a, b]) s?.server.closeAllConnections();
    await Promise.all([a, b].map((s) => new Promise((ok) => s?.server.close(ok))));
  });

  it('hands each new connection to the next backend in turn, and keeps a connection on its backend', async () => {
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await getAlone(balancer.url));
    expect(answers).toEqual(['a', 'b', 'a', 'b']);
    const kept = new Client(balancer.url, { pipelining: 1 });
    const onOne: string[] = [];
    for (let i = 0; i < 3; i++) onOne.push(await (await kept.request({ method: 'GET', path: '/' })).body.text());
    await kept.close();
    expect(new Set(onOne).size).toBe(1);
    expect(balancer.connections()).toEqual([3, 2]);
  });

  it('passes a half-close through: the client ends its request and still reads the answer', async () => {
    const socket = connect(Number(new URL(balancer.url).port), '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise((ok) => socket.once('close', ok));
    socket.end('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\n[ab]$/);
  });

  it('skips a backend that refuses connections, and closes the client when every one does', async () => {
    b.server.closeAllConnections();
    await new Promise((ok) => b.server.close(ok));
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await getAlone(balancer.url));
    expect(answers).toEqual(['a', 'a', 'a', 'a']);
    a.server.closeAllConnections();
    await new Promise((ok) => a.server.close(ok));
    expect(await getAlone(balancer.url)).toBe('failed');
  });
});
