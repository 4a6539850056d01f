/**
 * Every secret the config holds, so none can echo back through an upstream's error (the
 * redactor removes each wherever it appears): the master key and gateway keys, each
 * deployment's provider credentials and those the environment fills in, service-account
 * private keys (inline or from their file), passwords in URLs (the database's too), the
 * URL-signing key and the storage backend's secrets.
 */
import { readFileSync } from "node:fs";
import type { GatewayConfig } from "../config/load.ts";
import { SECRET_PARAMS, secretEnvNames } from "../providers/env.ts";
import { vertexAi } from "../providers/vertex_ai/descriptor.ts";

/** Fields of a Google credentials file (service account, authorized user) that are secret. */
const GOOGLE_SECRET_FIELDS = ["private_key", "private_key_id", "client_secret", "refresh_token"];

export function configSecrets(config: GatewayConfig): string[] {
  const params = [...config.groups.values()].flat().map((d) => d.params);
  const s3 = config.storage.s3;
  const found = [
    config.masterKey,
    ...config.keys.map((k) => k.key),
    ...params.flatMap((p) => SECRET_PARAMS.map((k) => p[k])),
    ...secretEnvNames().map((name) => config.env[name]),
    ...params.flatMap((p) => googleCredentialSecrets(p.vertex_credentials)),
    ...(vertexAi.env.vertex_credentials ?? []).flatMap((name) =>
      googleCredentialSecrets(config.env[name]),
    ),
    ...params.flatMap((p) => [p.api_base, p.azure_authority_host].flatMap(urlSecrets)),
    config.storage.signingKey,
    s3?.credentials?.secretAccessKey,
    s3?.credentials?.sessionToken,
    ...urlSecrets(s3?.endpoint),
    ...urlSecrets(config.databaseUrl),
    config.redis?.password,
  ];
  return found.filter((s): s is string => s !== undefined && s !== "");
}

/** `vertex_credentials` / `GOOGLE_APPLICATION_CREDENTIALS`: the JSON itself, or a path to it. */
function googleCredentialSecrets(credentials: string | undefined): string[] {
  if (credentials === undefined) return [];
  const inline = credentials.trimStart().startsWith("{");
  let text = credentials;
  if (!inline) {
    try {
      text = readFileSync(credentials, "utf8");
    } catch {
      return []; // the adapter reports an unreadable file when it is used
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return inline ? [credentials] : [];
  }
  if (json === null || typeof json !== "object") return [];
  const fields = GOOGLE_SECRET_FIELDS.map((f) => (json as Record<string, unknown>)[f]).filter(
    (v): v is string => typeof v === "string",
  );
  return inline ? [credentials, ...fields] : fields;
}

/** The password (and the whole URL) of a URL written with `user:password@`. */
function urlSecrets(url: string | undefined): string[] {
  if (url === undefined) return [];
  try {
    const u = new URL(url);
    if (u.password === "" && u.username === "") return [];
    return [url, u.password, decodeURIComponent(u.password)];
  } catch {
    return [];
  }
}
