/**
 * Which URLs the gateway may download a provider's image from (the SSRF guard's rules).
 *
 * - A provider's own image hosts (`providers/image-hosts.ts`): HTTPS on port 443, exact name.
 * - `general_settings.allowed_image_hosts` entries, each one of
 *   `host` (http or https on the default port), `host:port`, `*.domain` (any subdomain),
 *   or a URL `scheme://host[:port][/…]` (that scheme and port; the path is ignored, so a
 *   provider's `api_base` can be listed as is).
 * - A URL whose host is an IP address is fetched only when config lists that same address:
 *   that is the one way to allow a loopback or private address (emulators in dev and
 *   tests). A host name is fetched only when every address it resolves to is public
 *   (checked at connect time by `download.ts`, on the address actually connected to).
 *
 * Host names are compared in the WHATWG URL parser's canonical form, so `0x7f.1`,
 * `127.1` and `127.0.0.1` are one address, and case or a trailing IDN form cannot slip by.
 */
import { BlockList, isIP } from "node:net";

export interface HostRule {
  /** The entry as written, for messages. */
  source: string;
  /** Required scheme (`http:`/`https:`); undefined admits both. */
  scheme: string | undefined;
  /** Canonical host (lowercase; IPv6 in brackets). */
  host: string;
  /** `*.domain`: any name below `host`. */
  wildcard: boolean;
  /** Required port; undefined: the scheme's default port. */
  port: number | undefined;
  /** The host is an IP address (so the rule admits that address even when private). */
  ip: boolean;
}

const SCHEMES = new Set(["http:", "https:"]);

/** Parses one `allowed_image_hosts` entry; throws an Error saying what is wrong with it. */
export function parseHostRule(entry: string): HostRule {
  const source = entry;
  const text = entry.trim();
  const hasScheme = text.includes("://");
  const wildcard = !hasScheme && text.startsWith("*.");
  let url: URL;
  try {
    url = new URL(hasScheme ? text : `http://${wildcard ? text.slice(2) : text}`);
  } catch {
    throw new Error(`'${source}' is not a host, host:port, *.domain or URL`);
  }
  if (!SCHEMES.has(url.protocol))
    throw new Error(`'${source}': only http and https URLs can be allowed`);
  if (url.username !== "" || url.password !== "")
    throw new Error(`'${source}': credentials are not allowed in a host entry`);
  if (
    !hasScheme &&
    (url.pathname !== "/" || url.search !== "" || url.hash !== "" || /[/?#]/.test(text))
  ) {
    throw new Error(`'${source}' is not a host, host:port, *.domain or URL`);
  }
  const ip = isIpHost(url.hostname);
  if (wildcard && ip)
    throw new Error(`'${source}': a wildcard needs a domain name, not an address`);
  const port =
    url.port !== "" ? Number(url.port) : hasScheme ? defaultPort(url.protocol) : undefined;
  return {
    source,
    scheme: hasScheme ? url.protocol : undefined,
    host: url.hostname,
    wildcard,
    port,
    ip,
  };
}

/** Rules for a provider's own hosts: HTTPS, port 443, exact names. */
export function providerHostRules(hosts: readonly string[]): HostRule[] {
  return hosts.map((host) => ({ ...parseHostRule(`https://${host}`), source: host }));
}

/** Why `url` may not be fetched under `rules`, or undefined when it may. */
export function refusal(url: URL, rules: readonly HostRule[]): string | undefined {
  if (!SCHEMES.has(url.protocol)) return `scheme ${url.protocol.replace(/:$/, "")} is not fetched`;
  if (url.username !== "" || url.password !== "") return "URLs with credentials are not fetched";
  const host = url.hostname;
  const port = url.port !== "" ? Number(url.port) : defaultPort(url.protocol);
  const ip = isIpHost(host);
  const allowed = rules.some((rule) => {
    if (rule.scheme !== undefined && rule.scheme !== url.protocol) return false;
    if ((rule.port ?? defaultPort(url.protocol)) !== port) return false;
    if (ip || rule.ip) return rule.ip && ip && rule.host === host;
    return rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host;
  });
  return allowed ? undefined : `${url.protocol}//${url.host} is not an allowed image host`;
}

/**
 * Addresses that are not on the public internet: loopback, private, link-local, reserved.
 * (BlockList checks IPv4-mapped IPv6 addresses against the IPv4 rules by itself.)
 */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96], // NAT64: embeds any IPv4 address
  ["100::", 64],
  ["2001::", 32], // Teredo
  ["2001:db8::", 32],
  ["2002::", 16], // 6to4: embeds any IPv4 address
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, "ipv6");
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !NON_PUBLIC.check(address, family === 4 ? "ipv4" : "ipv6");
}

function isIpHost(hostname: string): boolean {
  return isIP(hostname.replace(/^\[(.*)\]$/, "$1")) !== 0;
}

function defaultPort(protocol: string): number {
  return protocol === "https:" ? 443 : 80;
}
