/**
 * Scrubs what an upstream said before it reaches a client, a log or a span: credentials
 * (keys, bearer tokens, JWTs, cloud keys), signed URLs and hostnames, and every secret the
 * config holds.
 */
const PATTERNS: [RegExp, string][] = [
  // Any URL: signed URLs carry credentials, and hostnames can be internal.
  [/\bhttps?:\/\/[^\s"'<>)]+/gi, "[url]"],
  [/\bBearer\s+[^\s"',]+/gi, "Bearer [redacted]"],
  [/\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+/g, "[redacted-token]"],
  [/\bsk-[\w*.-]{4,}[\w*]/g, "[redacted-key]"],
  [/\bya29\.[\w.-]+/g, "[redacted-token]"],
  [/\bAIza[\w-]{30,}/g, "[redacted-key]"],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, "[redacted-key]"],
  [
    /([?&;\s](?:key|api[-_]?key|sig|signature|token|access_token|X-Amz-[A-Za-z-]+)=)[^&\s"']+/gi,
    "$1[redacted]",
  ],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, "[host]"],
];

const known = new Set<string>();

/** Secrets from the config (provider keys, gateway keys): any exact occurrence is removed. */
export function registerSecrets(secrets: Iterable<string | undefined>): void {
  for (const s of secrets) if (s !== undefined && s.length >= 6) known.add(s);
}

export function redact(message: string): string {
  let out = message;
  for (const secret of known) if (out.includes(secret)) out = out.replaceAll(secret, "[redacted]");
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
