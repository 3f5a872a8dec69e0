import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Addresses a webhook may not reach unless allow-listed (SSRF): the IANA special-purpose ranges
 * a registry's own network holds — loopback, "this network", private (RFC 1918, unique local),
 * carrier-grade NAT, link-local (where the cloud metadata services live: 169.254.169.254,
 * fd00:ec2::254 is in fc00::/7), benchmarking, documentation, multicast, reserved, broadcast,
 * and IPv4 embedded in IPv6 (mapped, NAT64, 6to4), judged by the IPv4 inside.
 */
const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), if any. */
function embeddedIPv4(address: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const words = expandIPv6(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return v4(words[6], words[7]);
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4(words[6], words[7]);
  if (words[0] === 0x2002) return v4(words[1], words[2]);
  return undefined;
}

function expandIPv6(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, -dotted[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (s: string) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const fill = 8 - h.length - t.length;
  if (tail === undefined ? h.length !== 8 : fill < 0) return undefined;
  return [...h, ...Array(tail === undefined ? 0 : fill).fill(0), ...t];
}

/** Whether `address` (an IP literal) is in a forbidden range. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, 'ipv4');
  if (family !== 6) return true;
  const v4 = embeddedIPv4(address);
  return FORBIDDEN.check(address, 'ipv6') || (v4 !== undefined && FORBIDDEN.check(v4, 'ipv4'));
}

/** Raised when a webhook URL's host resolves to an address it may not reach. */
export class ForbiddenWebhookAddressError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`webhook host ${host} resolves to ${address}, a loopback, private, link-local or reserved address; allow it in notifications.allowedhosts`);
    this.name = 'ForbiddenWebhookAddressError';
  }
}

/**
 * Which webhook destinations are allowed: any public address, plus the hosts and networks in
 * `notifications.allowedhosts` (host names, matched case-insensitively, or CIDRs / single IPs).
 * Its `lookup` is given to the HTTP connector, so the address checked is the address connected
 * to: a name that resolves to a public address when checked and a private one when connecting
 * (DNS rebinding) cannot get through.
 */
export class WebhookAddressGuard {
  private readonly hosts = new Set<string>();
  private readonly networks = new BlockList();

  /** @throws Error when an entry is neither a host name nor an IP or CIDR. */
  constructor(allowed: readonly string[]) {
    for (const entry of allowed) {
      const [net, bits, extra] = entry.split('/');
      const family = isIP(net);
      if (family === 0 && bits === undefined) {
        this.hosts.add(entry.toLowerCase().replace(/\.$/, ''));
        continue;
      }
      const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
      if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new Error(`notifications.allowedhosts: ${entry} is neither a host name nor an IP address or CIDR`);
      }
      this.networks.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Whether `address`, which `host` resolved to, may be connected to. */
  allows(host: string, address: string): boolean {
    if (this.hosts.has(host.toLowerCase().replace(/\.$/, ''))) return true;
    const family = isIP(address);
    if (family !== 0 && this.networks.check(address, family === 4 ? 'ipv4' : 'ipv6')) return true;
    return !isForbiddenAddress(address);
  }

  /**
   * A `dns.lookup` replacement for `net.connect`: resolves, then fails the connection with
   * {@link ForbiddenWebhookAddressError} if any address the name resolves to is forbidden.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '');
      const refused = addresses.find((a) => !this.allows(hostname, a.address));
      if (refused) return callback(Object.assign(new ForbiddenWebhookAddressError(hostname, refused.address), { code: 'EWEBHOOKFORBIDDEN' }), '');
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };

  /**
   * Checks an IP-literal URL host at once (no lookup happens for those when connecting).
   * @throws ForbiddenWebhookAddressError
   */
  checkLiteral(host: string): void {
    const bare = host.replace(/^\[|\]$/g, '');
    if (isIP(bare) !== 0 && !this.allows(bare, bare)) throw new ForbiddenWebhookAddressError(host, bare);
  }
}
