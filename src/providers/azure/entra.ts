/**
 * Entra ID client-credentials tokens for Azure OpenAI
 * (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
 * cached per tenant/client/secret and refreshed before expiry.
 */
import { createHash } from "node:crypto";
import type { ProviderParams } from "../params.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { sendUpstream } from "../http.ts";
import { type FetchedToken, TokenCache } from "../token-cache.ts";
import { parseJson } from "../json.ts";
import { PROVIDER_NAME } from "./errors.ts";
import { clip } from "../../errors/redact.ts";

export const ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com";

/** The audience of Azure OpenAI (Cognitive Services) tokens. */
export const ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default";

export interface EntraCredentials {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** e.g. https://login.microsoftonline.com (no trailing path). */
  authorityHost: string;
}

/**
 * Entra ID client-credentials tokens
 * (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
 * one `TokenCache` per credential.
 */
export class EntraTokenCache {
  readonly #caches = new Map<string, TokenCache>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  token(creds: EntraCredentials, timeoutMs: number, signal: AbortSignal): Promise<string> {
    const key = cacheKey(creds);
    let cache = this.#caches.get(key);
    if (cache === undefined) {
      cache = new TokenCache(() => requestEntraToken(creds, timeoutMs), this.#now);
      this.#caches.set(key, cache);
    }
    return cache.get(signal);
  }

  /** Forgets the token of `creds` (Azure rejected it), so the next call fetches a new one. */
  invalidate(creds: EntraCredentials): void {
    this.#caches.get(cacheKey(creds))?.invalidate();
  }
}

/** The secret enters the key only through a hash, so the map never holds it in the clear twice. */
function cacheKey(c: EntraCredentials): string {
  return createHash("sha256")
    .update(`${c.authorityHost}\0${c.tenantId}\0${c.clientId}\0${c.clientSecret}`)
    .digest("hex");
}

export function entraTokenUrl(authorityHost: string, tenantId: string): string {
  return `${authorityHost.replace(/\/+$/, "")}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
}

/** One form POST to the tenant's token endpoint; errors name the Entra error code, never the secret. */
async function requestEntraToken(
  creds: EntraCredentials,
  timeoutMs: number,
): Promise<FetchedToken> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: creds.clientId,
    client_secret: creds.clientSecret,
    scope: ENTRA_SCOPE,
  });
  // Not the caller's signal: the token serves every waiting call, so one client leaving must not cancel it.
  const res = await sendUpstream(entraTokenUrl(creds.authorityHost, creds.tenantId), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
    signal: new AbortController().signal,
    timeoutMs,
  });
  const json = parseJson(res.body) as
    | { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown }
    | undefined;
  if (res.status !== 200) {
    const what = typeof json?.error === "string" ? json.error : `HTTP ${res.status}`;
    const description =
      typeof json?.error_description === "string"
        ? `: ${clip(json.error_description.split(/\r?\n/)[0]!, 300)}`
        : "";
    // Entra answers a wrong secret with 400 invalid_client; the rest is the endpoint's failure.
    const refused = res.status === 400 || res.status === 401 || res.status === 403;
    return Promise.reject(
      upstreamError(
        refused ? "auth_failed" : res.status === 503 ? "unavailable" : "server_error",
        `${PROVIDER_NAME}: the Entra ID token request failed (${res.status} ${what})${description}`,
      ),
    );
  }
  const expiresIn = Number(json?.expires_in);
  if (typeof json?.access_token !== "string" || json.access_token === "" || !(expiresIn > 0)) {
    throw upstreamError(
      "malformed_response",
      `${PROVIDER_NAME}: the Entra ID token endpoint answered without access_token or expires_in`,
    );
  }
  return { token: json.access_token, expiresInSeconds: expiresIn };
}

/** Which credential a deployment uses: its own Entra settings win over a key filled from the environment. */
export function entraCredentials(params: ProviderParams): EntraCredentials | undefined {
  const { tenant_id, client_id, client_secret } = params;
  if (tenant_id === undefined || client_id === undefined || client_secret === undefined)
    return undefined;
  return {
    tenantId: tenant_id,
    clientId: client_id,
    clientSecret: client_secret,
    authorityHost: params.azure_authority_host ?? ENTRA_AUTHORITY_HOST,
  };
}
