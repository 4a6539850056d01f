/**
 * Scrubs what an upstream said before it reaches a client, a log or a span: every secret the
 * config holds (registered at start), then what looks like a credential or a place: keys,
 * bearer tokens, JWTs, cloud keys, private keys, `password=`-style pairs, URLs (signed ones
 * carry credentials, and any names a host), hostnames, IPv4 and IPv6 addresses, file paths.
 * `redact` is idempotent; `redactValue` applies it to every string (and key) of a JSON value.
 */
import { isIP } from "node:net";

/** Names in `name=value` / `"name": "value"` pairs whose value is a secret. */
const SECRET_NAMES =
  "api[-_]?key|key|sig|signature|token|access[-_]?token|refresh[-_]?token|id[-_]?token|client[-_]?secret|secret|password|passwd|pwd|credentials?|private[-_]?key|X-Amz-[A-Za-z-]+";

/**
 * Last labels that make a dotted name a hostname: common public suffixes and the private
 * ones internal networks use. Model names (`dall-e-3`, `amazon.titan-image-generator-v1`,
 * `gpt-image-1.5`) and file names (`mask.png`) end in none of them.
 */
const HOST_SUFFIXES =
  "com|net|org|io|ai|dev|app|cloud|co|info|biz|xyz|tech|site|online|edu|gov|mil|int|uk|de|eu|fr|nl|jp|cn|ca|au|us|ru|br|es|ch|se|pl|internal|local|localdomain|lan|corp|home|intranet|intra|private|svc|cluster|test|example|invalid|localhost|arpa";

/** Roots of absolute paths that name files on a machine (the gateway's API paths start elsewhere). */
const PATH_ROOTS =
  "home|root|Users|var|etc|tmp|usr|opt|srv|mnt|media|data|app|apps|secrets?|run|proc|sys|dev|private|workspace|work|build|config|certs?|keys?|Library|Volumes|snap|nix";

const PATTERNS: [RegExp, string][] = [
  // PEM blocks (service-account private keys), also as JSON-escaped text.
  [
    /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
    "[redacted-key]",
  ],
  // Any URL (any scheme: https, redis, postgresql, s3…): signed URLs and user:password@ carry
  // credentials, and every URL names a host.
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)\]}]+/gi, "[url]"],
  [/\b(Bearer|Basic)\s+[^\s"',]+/gi, "$1 [redacted]"],
  [/\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+/g, "[redacted-token]"],
  [/\bsk-[\w*.-]{4,}[\w*]/g, "[redacted-key]"],
  [/\bya29\.[\w.-]+/g, "[redacted-token]"],
  [/\b(?:1\/\/|AIza)[\w-]{30,}/g, "[redacted-key]"],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, "[redacted-key]"],
  // name=value (query strings, connection strings, `password=…` in messages).
  [new RegExp(`(\\b(?:${SECRET_NAMES})=)(?!\\[redacted\\])[^&\\s"',;]+`, "gi"), "$1[redacted]"],
  // "name": "value" and name: value, as JSON or YAML quote them.
  [
    new RegExp(
      `((?:^|[\\s{,(\\["'])["']?(?:${SECRET_NAMES})["']?\\s*:\\s*)(?:"(?:[^"\\\\]|\\\\.)*"|'[^']*'|(?!\\[redacted\\])[^\\s,;}\\]]+)`,
      "gim",
    ),
    "$1[redacted]",
  ],
  // Hosts: the name a DNS or connect failure names, then dotted names with a host suffix.
  [/\b(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME)\s+(?!\[host\])[^\s,;:)'"]+/g, "$1 [host]"],
  [
    new RegExp(
      `(?<![\\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+(?:${HOST_SUFFIXES})(?::\\d{1,5})?(?![\\w-]|\\.[a-z0-9])`,
      "gi",
    ),
    "[host]",
  ],
  [/\blocalhost(?::\d{1,5})?\b/gi, "[host]"],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, "[host]"],
  // File paths: absolute paths under a machine's usual roots, home-relative and Windows paths.
  [
    new RegExp(`(?<![\\w.\\]/-])/(?:${PATH_ROOTS})(?:/[^\\s"'<>|,;()]*)?(?=$|[\\s"'<>|,;()])`, "g"),
    "[path]",
  ],
  [/(?<![\w/])~\/[^\s"'<>|,;()]+/g, "[path]"],
  [/\b[A-Za-z]:\\[^\s"'<>|,;()]*/g, "[path]"],
  [/\\\\[\w.-]+\\[^\s"'<>|,;()]*/g, "[path]"],
];

/** An IPv6 candidate: hex groups and colons (at least two), optionally bracketed, with a zone and a port. */
const IPV6 =
  /(?<![\w:.%])(\[)?((?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{0,4}))(%[\w.-]+)?(\])?(?::\d{1,5})?(?![\w:]|\.\w)/gi;

const known = new Set<string>();
/** The registered secrets, longest first, so one containing another is removed whole. */
let ordered: string[] = [];

/**
 * Secrets from the config (provider keys, gateway keys, client secrets, private keys, cloud
 * secrets): any exact occurrence is removed, also as it reads JSON-escaped or URL-encoded.
 */
export function registerSecrets(secrets: Iterable<string | undefined>): void {
  for (const s of secrets) {
    if (s === undefined || s.length < 6) continue;
    known.add(s);
    known.add(JSON.stringify(s).slice(1, -1));
    known.add(encodeURIComponent(s));
    // A PEM key also as its base64 body alone, and each of its lines (echoed one at a time).
    const pem = /-----BEGIN [A-Z0-9 ]+-----([\s\S]+?)-----END/.exec(s);
    if (pem) {
      known.add(pem[1]!.replace(/\s+/g, ""));
      for (const line of pem[1]!.split(/\s+/)) if (line.length >= 16) known.add(line);
    }
  }
  ordered = [...known].sort((a, b) => b.length - a.length);
}

export function redact(message: string): string {
  let out = message;
  for (const secret of ordered)
    if (out.includes(secret)) out = out.replaceAll(secret, "[redacted]");
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out.replace(IPV6, (match, _open, address: string) =>
    /[0-9a-f]/i.test(address) && isIP(address) === 6 ? "[host]" : match,
  );
}

/** How deep `redactValue` looks into upstream JSON; below it a value is dropped, not shown unscrubbed. */
const MAX_DEPTH = 16;

/** A JSON value with `redact` applied to every string and every key in it. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return "[truncated]";
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, redact(k), {
      value: redactValue(v, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The first `max` characters of upstream text, scrubbed before the cut so it cannot leave part of a secret. */
export function clip(text: string, max: number): string {
  return redact(text).slice(0, max);
}
