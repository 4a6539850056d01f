/**
 * Application Default Credentials through google-auth-library, for Vertex AI deployments
 * without a service-account key: `GOOGLE_APPLICATION_CREDENTIALS` (or `vertex_credentials`)
 * of another type (authorized user, external account / workload identity federation,
 * impersonated service account), gcloud's well-known file, else the GCE / GKE metadata
 * server (`GCE_METADATA_HOST` honoured by the library). The library refreshes its own
 * credentials; the access token goes through the same TokenCache as the service-account
 * flow (one token cache: one fetch in flight, refreshed ahead of expiry, forgotten when
 * Vertex refuses it).
 */
import type { GoogleAuth } from "google-auth-library";
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { TokenCache } from "../token-cache.ts";

export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

export const ADC_SOURCES =
  "GOOGLE_APPLICATION_CREDENTIALS, gcloud's application_default_credentials.json, the GCE/GKE metadata server (GCE_METADATA_HOST)";

export interface Account {
  tokens: TokenCache;
  /** The project the credentials name (a key's project_id, ADC's project), if any. */
  projectId(): Promise<string | undefined>;
  /** Where the credentials come from, for messages. */
  describe: string;
}

/** Without a token lifetime from the library, an hour (Google's). */
const DEFAULT_LIFETIME_SECONDS = 3600;

function adcFailed(describe: string, e: unknown): GatewayError {
  const message = e instanceof Error ? e.message : String(e);
  const why = message
    .split(/\r?\n/)[0]!
    .replace(/[A-Za-z0-9+/=_.-]{40,}/g, "[…]")
    .slice(0, 300);
  return upstreamError(
    "auth_failed",
    `Vertex AI: no access token from ${describe}: ${why || "no reason given"}`,
    { cause: e },
  );
}

/** `json`: a credentials file's content (any ADC type); absent: the library's own search. */
export function adcAccount(json?: Record<string, unknown>, where?: string): Account {
  // google-auth-library is loaded on first use (it is large, and most configs never need it).
  let authP: Promise<GoogleAuth> | undefined;
  const authClient = () => {
    authP ??= import("google-auth-library").then(
      ({ GoogleAuth }) =>
        new GoogleAuth({
          scopes: [CLOUD_PLATFORM_SCOPE],
          // biome-ignore lint/suspicious/noExplicitAny: the library's union of credential file shapes
          ...(json === undefined ? {} : { credentials: json as any }),
        }),
    );
    return authP;
  };
  const describe =
    json === undefined
      ? `Application Default Credentials (${ADC_SOURCES})`
      : `${where ?? "the credentials"} (${String(json.type)})`;
  const tokens = new TokenCache(async () => {
    try {
      const client = await (await authClient()).getClient();
      const { token } = await client.getAccessToken();
      if (typeof token !== "string" || token === "") throw new Error("no access token returned");
      const expiry = Number(client.credentials.expiry_date);
      const seconds = Number.isFinite(expiry)
        ? Math.max(1, Math.floor((expiry - Date.now()) / 1000))
        : DEFAULT_LIFETIME_SECONDS;
      return { token, expiresInSeconds: seconds };
    } catch (e) {
      throw adcFailed(describe, e);
    }
  });
  return {
    tokens,
    describe,
    projectId: async () => {
      try {
        return (await (await authClient()).getProjectId()) ?? undefined;
      } catch {
        return undefined;
      }
    },
  };
}

let defaultAccount: Account | undefined;

/** The process's Application Default Credentials (one account, shared by every deployment using them). */
export function defaultAdcAccount(): Account {
  defaultAccount ??= adcAccount();
  return defaultAccount;
}
