import { connect, createServer, type Server, type Socket } from 'node:net';

/** A round-robin TCP balancer on 127.0.0.1, as a Kubernetes Service spreads connections over pods. */
export interface TcpBalancer {
  /** `http://127.0.0.1:<port>`: where clients connect. */
  url: string;
  /** The backends' URLs, in the order they take connections. */
  backends: readonly string[];
  /** Connections handed to each backend so far, in backend order. */
  connections(): number[];
  /** Closes the listener and every connection through it. */
  stop(): Promise<void>;
}

/**
 * Starts a balancer in front of `backends` (`http://host:port` URLs): each accepted connection
 * goes, whole, to the next backend in turn — never a request to one and the next request on the
 * same connection to another, which is how an L4 balancer treats keep-alive traffic. A backend
 * that refuses the connection (a replica killed or restarting) is skipped for that connection, as
 * a Service drops an endpoint that is not ready; when every backend refuses, the client's
 * connection is closed. Half-closes pass through, so a client may end its body and still read
 * the answer.
 */
export async function startTcpBalancer(backends: readonly string[]): Promise<TcpBalancer> {
  if (backends.length === 0) throw new Error('a balancer needs at least one backend');
  const targets = backends.map((b) => {
    const u = new URL(b);
    return { host: u.hostname, port: Number(u.port) };
  });
  const counts = backends.map(() => 0);
  const open = new Set<Socket>();
  let next = 0;

  const track = (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };

  const relay = (client: Socket, attempt: number) => {
    const index = next;
    next = (next + 1) % targets.length;
    const upstream = connect({ ...targets[index], allowHalfOpen: true });
    track(upstream);
    const onConnectError = () => {
      upstream.destroy();
      if (attempt + 1 < targets.length && !client.destroyed) relay(client, attempt + 1);
      else client.destroy();
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      if (client.destroyed) return void upstream.destroy();
      counts[index]++;
      const cut = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', cut).on('close', cut);
      upstream.on('error', cut).on('close', cut);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    track(client);
    // Until its backend is chosen, the client's bytes wait in the socket (paused on connect).
    client.once('error', () => client.destroy());
    relay(client, 0);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    backends,
    connections: () => [...counts],
    async stop() {
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      for (const s of open) s.destroy();
      await closed;
    },
  };
}
