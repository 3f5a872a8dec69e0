import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RegistryEvent } from '@lading/contracts';
import type { WebhookEndpoint } from '@lading/app-notifications';

/** An endpoint as the configuration makes it, with short timings for tests; `extra` overrides. */
export function testEndpoint(name: string, url: string, extra: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    name,
    disabled: false,
    url,
    headers: {},
    timeout: 2000,
    threshold: 100,
    backoff: 20,
    maxbackoff: 40,
    maxattempts: 3,
    ignoredmediatypes: [],
    ignore: { mediatypes: [], actions: [] },
    format: 'distribution',
    ...extra,
  };
}

/** A webhook receiver on 127.0.0.1 that records every POST and answers as `answer` says (200 by default). */
export class WebhookReceiver {
  readonly posts: { headers: IncomingMessage['headers']; body: Buffer }[] = [];
  /** Answers the n-th POST (1-based). */
  answer: (res: ServerResponse, n: number) => void = (res) => res.writeHead(200).end();
  url = '';
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.posts.push({ headers: req.headers, body: Buffer.concat(chunks) });
      this.answer(res, this.posts.length);
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this;
  }

  /** Answers every POST from now on with `status(n)`. */
  answerWith(status: (n: number) => number): void {
    this.answer = (res, n) => res.writeHead(status(n)).end();
  }

  /** Every event received (reference body `{"events":[…]}`), in order, duplicates included. */
  events(): RegistryEvent[] {
    return this.posts.flatMap((p) => JSON.parse(p.body.toString()).events as RegistryEvent[]);
  }

  /** The ids of `events()`. */
  ids(): string[] {
    return this.events().map((e) => e.id);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((ok) => this.server.close(ok));
  }
}
