import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { Client } from 'undici';
import { randomImage, RegistryTestClient } from '@lading/testing';
import { uniqueRepo } from '../support/clients-tools';
import { servedRequests, startReplicated, type ReplicatedStack } from '../support/replicated-stack';
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

/**
 * The replicated split stack with the gateway's default upstream settings: a gateway does not pin
 * a service to one replica, and one replica going away (kill -9) is not an outage.
 */
describe('a replicated split stack (2 replicas each, PostgreSQL and MinIO) with default settings', () => {
  let stack: ReplicatedStack;
  let c: RegistryTestClient;
  const name = uniqueRepo('replicated');
  const image = randomImage({ layers: 1, layerSize: 1024 });
  const manifestPath = `/v2/${name}/manifests/v1`;

  beforeAll(async () => {
    stack = await startReplicated({ replicas: 2, storage: 's3' });
    c = new RegistryTestClient(stack.url);
    expect((await c.pushImage(name, image, 'v1')).status).toBe(201);
  });
  afterAll(async () => {
    await c?.close();
    await stack?.stop();
  });

  // GETs only: the manifest PUT of the push in beforeAll has the same path, and its access line
  // can reach this process's copy of the replica's log after the first `before` snapshot (the
  // line is written when the response has gone out, and read from a pipe), which counted it as
  // a 301st request once.
  const served = (i: number) =>
    servedRequests(stack.replicas.manifests[i]).filter((r) => r.method === 'GET' && r.path === manifestPath).length;
  /**
   * The manifest GETs each replica served since `before`, once they add up to `total`: a process
   * logs a request when its response has gone out, so the last line may lag a little.
   */
  async function servedSince(before: number[], total: number): Promise<number[]> {
    let spread = [0, 0];
    for (let i = 0; i < 40 && spread[0] + spread[1] < total; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      spread = [served(0) - before[0], served(1) - before[1]];
    }
    return spread;
  }

  it('spreads a sequential stream of requests on one client connection to one gateway over both manifests replicas', async () => {
    // One connection to one gateway: a connection balancer in front of the gateways cannot
    // spread it, so whatever spreading happens is the gateway's. It replaces its connection to
    // manifests every 100 requests (http.upstream.maxrequests), and the Service in front of the
    // replicas gives each new connection to the next one.
    const gateway = new Client(stack.replicas.gateway[0].url, { pipelining: 1 });
    const before = [served(0), served(1)];
    const statuses = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const res = await gateway.request({ method: 'GET', path: manifestPath, headers: { accept: image.mediaType } });
      await res.body.dump();
      statuses.add(res.statusCode);
    }
    await gateway.close();
    const spread = await servedSince(before, 300);
    console.log(`300 sequential manifest GETs on one connection: ${spread.join(' / ')} per manifests replica`);
    expect([...statuses]).toEqual([200]);
    expect(spread[0] + spread[1]).toBe(300);
    expect(Math.min(...spread)).toBeGreaterThanOrEqual(90);
  });

  it('with http.upstream.maxrequests 1 sends every request on a new connection, so ten in a row alternate between the replicas', async () => {
    const gateway = await stack.startExtra('gateway', { LADING_HTTP_UPSTREAM_MAXREQUESTS: '1' });
    const client = new Client(gateway.url, { pipelining: 1 });
    const before = [served(0), served(1)];
    const connections = stack.balancers.manifests.connections().reduce((a, b) => a + b);
    for (let i = 0; i < 10; i++) {
      const res = await client.request({ method: 'GET', path: manifestPath, headers: { accept: image.mediaType } });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    await client.close();
    await gateway.stop();
    expect(stack.balancers.manifests.connections().reduce((a, b) => a + b) - connections).toBe(10);
    expect(await servedSince(before, 10)).toEqual([5, 5]);
  });

  it('keeps serving when a manifests replica is killed, and sends requests to it again once it is back', async () => {
    await stack.replicas.manifests[1].kill9();
    // A request the gateway sends on a connection to the dead replica before that connection is
    // seen closed gets 503 (the documented answer for a dead upstream); let the resets arrive.
    await new Promise((r) => setTimeout(r, 300));
    const whileDown: number[] = [];
    for (let i = 0; i < 20; i++)
      whileDown.push((await c.call('GET', manifestPath, { headers: { accept: image.mediaType } })).status);
    expect(whileDown).toEqual(Array(20).fill(200));

    const fresh = await stack.restart('manifests', 1, 'sigkill');
    const clients = Array.from({ length: 8 }, () => new RegistryTestClient(stack.url));
    try {
      // New client connections reach both gateways, whose pools open new connections under load.
      await Promise.all(
        clients.map(async (client) => {
          for (let i = 0; i < 20; i++)
            expect((await client.call('GET', manifestPath, { headers: { accept: image.mediaType } })).status).toBe(200);
        }),
      );
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
    expect(servedRequests(fresh).filter((r) => r.path === manifestPath).length).toBeGreaterThan(0);
  });
});
