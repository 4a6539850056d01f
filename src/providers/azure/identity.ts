/**
 * Entra ID for Azure OpenAI deployments without `api_key`, `azure_ad_token` or a client
 * secret, through @azure/identity: the environment (`AZURE_TENANT_ID` + `AZURE_CLIENT_ID` +
 * `AZURE_CLIENT_SECRET` or a certificate), workload identity (`AZURE_FEDERATED_TOKEN_FILE`,
 * as on AKS), managed identity (`IDENTITY_ENDPOINT` / `IDENTITY_HEADER` as on App Service and
 * Container Apps, else the instance metadata service), in that order. Scope
 * `https://cognitiveservices.azure.com/.default`. The token goes through the one TokenCache
 * (one fetch in flight, refreshed ahead of expiry, forgotten when Azure refuses it).
 */
import type { TokenCredential } from "@azure/identity";
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { TokenCache } from "../token-cache.ts";
import type { AdapterDeployment } from "../types.ts";
import { PROVIDER_NAME } from "./errors.ts";

export const IDENTITY_SOURCES =
  "environment (AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity (IDENTITY_ENDPOINT, else instance metadata)";

/** The audience of Azure OpenAI (Cognitive Services) tokens. */
const SCOPE = "https://cognitiveservices.azure.com/.default";

/** The chain of sources; @azure/identity is loaded only when a deployment needs it (it is large). */
async function credential(): Promise<TokenCredential> {
  const {
    ChainedTokenCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
  } = await import("@azure/identity");
  const env = process.env;
  const chain: TokenCredential[] = [new EnvironmentCredential()];
  if (env.AZURE_FEDERATED_TOKEN_FILE) chain.push(new WorkloadIdentityCredential());
  chain.push(
    env.AZURE_CLIENT_ID
      ? new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID })
      : new ManagedIdentityCredential(),
  );
  return new ChainedTokenCredential(...chain);
}

function identityFailed(e: unknown): GatewayError {
  const message = e instanceof Error ? e.message : String(e);
  const why = message
    .split(/\r?\n/)[0]!
    .replace(/[A-Za-z0-9+/=_.-]{40,}/g, "[…]")
    .slice(0, 300);
  return upstreamError(
    "auth_failed",
    `${PROVIDER_NAME}: no Entra ID token from ${IDENTITY_SOURCES}: ${why || "no reason given"}`,
    { cause: e },
  );
}

let shared: TokenCache | undefined;

/** The process's identity token cache (the sources are the process's, so one for every deployment). */
export function identityTokens(): TokenCache {
  if (shared === undefined) {
    let source: TokenCredential | undefined;
    shared = new TokenCache(async () => {
      let token: Awaited<ReturnType<TokenCredential["getToken"]>>;
      try {
        // Built on first use (a source's settings can be refused as it is made).
        source ??= await credential();
        token = await source.getToken(SCOPE);
      } catch (e) {
        throw identityFailed(e);
      }
      if (token === null) throw identityFailed(new Error("no token returned"));
      return {
        token: token.token,
        expiresInSeconds: Math.max(1, Math.floor((token.expiresOnTimestamp - Date.now()) / 1000)),
      };
    });
  }
  return shared;
}

/** Whether a deployment authenticates through @azure/identity (no key, token or secret of its own). */
export function usesIdentity(d: AdapterDeployment): boolean {
  const p = d.params;
  return (
    p.api_key === undefined &&
    p.azure_ad_token === undefined &&
    (p.tenant_id === undefined || p.client_id === undefined || p.client_secret === undefined)
  );
}

/** At startup: a warning naming the deployment when no identity source yields a token. */
export async function probeAzureCredentials(d: AdapterDeployment): Promise<string | undefined> {
  if (!usesIdentity(d)) return undefined;
  try {
    await identityTokens().get(new AbortController().signal);
    return undefined;
  } catch (e) {
    return `Azure OpenAI deployment ${d.id} (model '${d.group}'): ${(e as Error).message}; its requests fail with upstream_auth_failed until a source works`;
  }
}
