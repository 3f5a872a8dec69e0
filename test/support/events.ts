import { randomUUID } from 'node:crypto';
import { systemScope } from '@lading/contracts';
import { blobEvent, buildRegistryEvent, MetadataDb, openMetadataDb } from '@lading/metadata-db';
import type { LadingProcess } from './registry-processes';
import { withDb } from './robustness-stack';

/**
 * Writes `n` push events straight into the outbox (through the store, as writers do: order locks
 * included), round-robin over `repositories`, in transactions of up to 1000. For volume beyond
 * what real pushes give. Returns the ids in the order written.
 */
export async function insertOutboxEvents(databaseUrl: string, n: number, repositories: readonly string[]): Promise<string[]> {
  const db = new MetadataDb(await openMetadataDb({ url: databaseUrl, migrate: false, poolSize: 2 }), { source: { instanceID: 'test-insert' } });
  const ids: string[] = [];
  try {
    for (let start = 0; start < n; start += 1000) {
      const entries = Array.from({ length: Math.min(1000, n - start) }, (_, i) => {
        const repository = repositories[(start + i) % repositories.length];
        const event = buildRegistryEvent(
          systemScope('upload.complete', repository, randomUUID()),
          blobEvent('push', repository, { digest: `sha256:${'d'.repeat(64)}`, size: start + i }, `http://test/v2/${repository}/blobs/x`),
          db.source,
        );
        return { event, traceparent: null, tenant: null };
      });
      await db.transaction((tx) => tx.outbox.appendMany(entries));
      ids.push(...entries.map((e) => e.event.id));
    }
  } finally {
    await db.close();
  }
  return ids;
}

/** Repository → event ids in outbox (seq) order: the order each repository's events must reach the topic in. */
export async function outboxOrder(databaseUrl: string): Promise<Map<string, string[]>> {
  return withDb(databaseUrl, async (db) => {
    const { rows } = await db.query<{ id: string; repository: string }>('SELECT id, repository FROM event_outbox ORDER BY seq');
    const order = new Map<string, string[]>();
    for (const r of rows) order.set(r.repository, [...(order.get(r.repository) ?? []), r.id]);
    return order;
  });
}

/** How many outbox events were marked sent, and how many there are. */
export async function outboxProgress(databaseUrl: string): Promise<{ sent: number; total: number }> {
  return withDb(databaseUrl, async (db) => {
    const { rows } = await db.query<{ sent: number; total: number }>(
      'SELECT (SELECT count(*) FROM event_outbox)::int - (SELECT count(*) FROM event_outbox_unsent)::int AS sent, (SELECT count(*) FROM event_outbox)::int AS total',
    );
    return rows[0];
  });
}

/** Waits until every event in the outbox was marked sent; throws after `timeoutMs`. */
export async function drained(databaseUrl: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { sent, total } = await outboxProgress(databaseUrl);
    if (sent === total) return;
    if (Date.now() > deadline) throw new Error(`the outbox still holds ${total - sent} unsent events after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A notifications process's readiness: status code and body (bus, backlog, relay counters). */
export async function notificationsHealth(p: LadingProcess): Promise<{ status: number; body: any }> {
  const r = await fetch(`${p.url}/healthz/ready`);
  return { status: r.status, body: await r.json() };
}
