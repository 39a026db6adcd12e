import { isIP } from 'node:net';

/**
 * The Host header check against DNS rebinding: a web page open on the device (a kiosk browser)
 * can make its own name resolve to 127.0.0.1 and then read this endpoint as same-origin; its
 * requests still carry its own name in Host. So only Host values that name this listener are
 * served: 127.0.0.1, localhost, [::1] and the configured listen host, plus the names in
 * `http.allowedHosts`, each with the listening port (a Host without a port means port 80). On a
 * wildcard listener (0.0.0.0, ::) an IP literal is served as well: a page can only reach the
 * device by its address if it was loaded from that address, which no rebinding achieves.
 */

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/** A Host header value -> lower-case name (IPv6 in brackets) and port, or undefined when malformed. */
export function parseHost(value: string): { name: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65_535) return undefined;
  return { name: m[1].toLowerCase().replace(/\.$/, ''), port };
}

/** How a listen address or a configured name appears in a Host header. */
function asHostName(host: string): string {
  const h = host.toLowerCase();
  return isIP(h) === 6 ? `[${h}]` : h;
}

export class HostCheck {
  private readonly names: Set<string>;
  private readonly wildcard: boolean;

  constructor(listenHost: string, allowed: readonly string[] = []) {
    this.names = new Set([...LOOPBACK, asHostName(listenHost), ...allowed.map(asHostName)]);
    this.wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  }

  /** Whether a request with this Host header, on a listener bound to `port`, is served. */
  allows(header: string | undefined, port: number): boolean {
    if (header === undefined) return false;
    const h = parseHost(header);
    if (!h || h.port !== port) return false;
    if (this.names.has(h.name)) return true;
    return this.wildcard && isIP(h.name.replace(/^\[|\]$/g, '')) !== 0;
  }
}
