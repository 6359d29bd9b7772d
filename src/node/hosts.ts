// The Host header check of the page server (src/node/server.ts): only a name of this server is
// answered (421 otherwise), so a page whose name was rebound to this machine's address (DNS
// rebinding) cannot read it.
import { networkInterfaces } from 'node:os';

/** `host` as a Host header names it (without the port): lowercase, an IPv6 address in brackets. */
export function hostName(host: string): string {
  const h = host.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/**
 * The names a server bound to `host` answers to: the loopback ones, `host`, `allow` and, bound
 * beyond loopback, this machine's addresses (as other machines reach it).
 */
export function hostNames(host: string, allow: readonly string[] = []): Set<string> {
  const names = [...LOOPBACK, host, ...allow];
  if (!LOOPBACK.includes(host.toLowerCase())) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.address);
  }
  return new Set(names.map(hostName));
}

/**
 * Whether a Host header names this server: one of `names` or the address the connection came in
 * on, with the port it came in on (no port only for port 80). Anything else is another site's
 * name, such as one rebound to this machine's address.
 */
export function hostAllowed(
  header: string,
  names: ReadonlySet<string>,
  socket: { localAddress?: string; localPort?: number },
): boolean {
  const [, host, port = '80'] = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(header.toLowerCase()) ?? [];
  if (host === undefined || port !== String(socket.localPort)) return false;
  // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
  const local = socket.localAddress?.replace(/^::ffff:(?=\d+\.)/, '');
  return names.has(host) || (local !== undefined && host === hostName(local));
}
