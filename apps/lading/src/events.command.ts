import { adminToken } from '@lading/app-notifications';
import type { LadingConfig } from '@lading/nest-common';

export const EVENTS_USAGE = `  events endpoints                        webhook endpoints: state, lag, dead letters
  events deliveries [--endpoint N] [--status pending|delivered|dead] [--limit N]
  events attempts <endpoint>              the delivery log of an endpoint
  events redeliver <endpoint> [<event id>]  every dead letter of the endpoint again, or one event
  events pause <endpoint> | resume <endpoint>
      (talks to the webhook admin API of notifications (services.notifications.url) or of the
      embedded registry (http.addr), or --url U)`;

/** The URL of this machine's registry listening on `addr` (`0.0.0.0:5000` → `http://127.0.0.1:5000`). */
export function localUrl(addr: string): string {
  return `http://${addr.replace(/^(0\.0\.0\.0|\[::\]|):/, '127.0.0.1:')}`;
}

/** A request the command sends: method and path of the admin API. */
function request(args: string[]): { method: 'GET' | 'POST'; path: string } | undefined {
  const [sub, a, b] = args.filter((x, i, all) => !x.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const enc = encodeURIComponent;
  switch (sub) {
    case 'endpoints':
      return { method: 'GET', path: '/admin/webhooks/endpoints' };
    case 'deliveries': {
      const q = new URLSearchParams();
      for (const k of ['endpoint', 'status', 'limit']) if (flag(k) !== undefined) q.set(k, flag(k)!);
      return { method: 'GET', path: `/admin/webhooks/deliveries${q.size ? `?${q}` : ''}` };
    }
    case 'attempts':
      return a ? { method: 'GET', path: `/admin/webhooks/endpoints/${enc(a)}/attempts` } : undefined;
    case 'redeliver':
      if (!a) return undefined;
      return { method: 'POST', path: b ? `/admin/webhooks/endpoints/${enc(a)}/deliveries/${enc(b)}/redeliver` : `/admin/webhooks/endpoints/${enc(a)}/redeliver` };
    case 'pause':
    case 'resume':
      return a ? { method: 'POST', path: `/admin/webhooks/endpoints/${enc(a)}/${sub}` } : undefined;
  }
  return undefined;
}

/**
 * `lading events …`: the webhook admin API of a running notifications service (or embedded
 * registry), printed as JSON.
 * False when the arguments name no command (the caller prints the usage).
 */
export async function eventsCommand(args: string[], config: LadingConfig): Promise<boolean> {
  const call = request(args);
  if (!call) return false;
  const i = args.indexOf('--url');
  const base = i >= 0 ? args[i + 1] : (config.services.notifications.url ?? localUrl(config.http.addr));
  if (!config.http.secret) throw new Error('lading events: the admin API needs http.secret (LADING_HTTP_SECRET), as notifications has it');
  const res = await fetch(new URL(call.path, base), { method: call.method, headers: { authorization: `Bearer ${adminToken(config.http.secret)}` } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: print as it came
  }
  console.log(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  if (!res.ok) process.exitCode = 1;
  return true;
}
