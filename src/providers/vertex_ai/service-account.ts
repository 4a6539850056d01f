/**
 * Vertex AI's service-account OAuth flow
 * (https://developers.google.com/identity/protocols/oauth2/service-account#httprest): an RS256
 * JWT signed with `jose`, POSTed to the key file's own `token_uri` (which google-auth-library
 * would ignore), the access token cached and refreshed before expiry with one refresh in
 * flight per service account.
 */
import { readFile } from "node:fs/promises";
import { importPKCS8, SignJWT } from "jose";
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { first, safeUrl, sendUpstream } from "../http.ts";
import { type FetchedToken, TokenCache } from "../token-cache.ts";
import { parseJsonObject as parseJson } from "../json.ts";
import { type Account, adcAccount, CLOUD_PLATFORM_SCOPE } from "./adc.ts";

export { CLOUD_PLATFORM_SCOPE };

const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";

const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** Google accepts assertions valid for at most an hour. */
const ASSERTION_LIFETIME_SECONDS = 3600;

const TOKEN_TIMEOUT_MS = 30_000;

export const LABEL = "Vertex AI";

/** Application Default Credentials types google-auth-library reads besides service accounts. */
const OTHER_TYPES = ["authorized_user", "external_account", "impersonated_service_account"];

/** The fields of a service-account key file this flow uses. */
export interface ServiceAccountKey {
  type?: string;
  project_id?: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  token_uri: string;
}

/**
 * Reads `vertex_credentials`: the key JSON itself, or a path to it. Messages name the
 * path or the missing field, never the content (it holds a private key).
 */
export async function loadServiceAccount(credentials: string): Promise<ServiceAccountKey> {
  const loaded = await loadCredentialsFile(credentials);
  if ("other" in loaded) {
    throw authFailed(
      `${loaded.where} has type '${String(loaded.other.type)}'; only 'service_account' keys are supported here`,
    );
  }
  return loaded;
}

/**
 * Reads `vertex_credentials`: a service-account key (used by the flow below), or another
 * Application Default Credentials file (authorized user, external account: handed to
 * google-auth-library, adc.ts). Messages name the path or the missing field, never the
 * content (it holds a private key or a refresh token).
 */
export async function loadCredentialsFile(
  credentials: string,
): Promise<ServiceAccountKey | { other: Record<string, unknown>; where: string }> {
  const inline = credentials.trimStart().startsWith("{");
  let text = credentials;
  if (!inline) {
    try {
      text = await readFile(credentials, "utf8");
    } catch (e) {
      throw authFailed(
        `cannot read the service-account key file ${credentials} (${(e as { code?: string }).code ?? "error"})`,
      );
    }
  }
  const where = inline
    ? "the inline service-account key (vertex_credentials)"
    : `the service-account key file ${credentials}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw authFailed(`${where} is not valid JSON`);
  }
  if (typeof json !== "object" || json === null) throw authFailed(`${where} is not a JSON object`);
  const raw = json as Record<string, unknown>;
  if (raw.type !== undefined && raw.type !== "service_account") {
    if (typeof raw.type === "string" && OTHER_TYPES.includes(raw.type))
      return { other: raw, where };
    throw authFailed(
      `${where} has type '${String(raw.type)}'; supported: service_account, ${OTHER_TYPES.join(", ")}`,
    );
  }
  for (const field of ["client_email", "private_key", "private_key_id"] as const) {
    if (typeof raw[field] !== "string" || raw[field] === "")
      throw authFailed(`${where} has no ${field}`);
  }
  return {
    ...(typeof raw.type === "string" ? { type: raw.type } : {}),
    ...(typeof raw.project_id === "string" ? { project_id: raw.project_id } : {}),
    private_key_id: raw.private_key_id as string,
    private_key: raw.private_key as string,
    client_email: raw.client_email as string,
    token_uri:
      typeof raw.token_uri === "string" && raw.token_uri !== "" ? raw.token_uri : GOOGLE_TOKEN_URI,
  };
}

/** The signed assertion of the JWT-bearer grant (RFC 7523), as Google's token endpoint wants it. */
export async function signAssertion(
  key: ServiceAccountKey,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  let privateKey: CryptoKey;
  try {
    privateKey = await importPKCS8(key.private_key, "RS256");
  } catch {
    throw authFailed(`the private_key of ${key.client_email} is not a PKCS#8 RSA key`);
  }
  return new SignJWT({ scope: CLOUD_PLATFORM_SCOPE })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.private_key_id })
    .setIssuer(key.client_email)
    .setAudience(key.token_uri)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + ASSERTION_LIFETIME_SECONDS)
    .sign(privateKey);
}

/** Exchanges a fresh assertion for an access token at the key's `token_uri`, used as given. */
export async function requestAccessToken(key: ServiceAccountKey): Promise<FetchedToken> {
  const assertion = await signAssertion(key);
  const where = safeUrl(key.token_uri);
  let res: Awaited<ReturnType<typeof sendUpstream>>;
  try {
    res = await sendUpstream(key.token_uri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
      signal: new AbortController().signal,
      timeoutMs: TOKEN_TIMEOUT_MS,
    });
  } catch (e) {
    throw authFailed(`could not obtain an access token from ${where}: ${(e as Error).message}`, e);
  }
  const json = parseJson(res.body);
  if (res.status === 200 && typeof json?.access_token === "string" && json.access_token !== "") {
    const expires = Number(json.expires_in);
    return {
      token: json.access_token,
      expiresInSeconds: Number.isFinite(expires) && expires > 0 ? expires : 3600,
    };
  }
  const error = typeof json?.error === "string" ? json.error : undefined;
  const description =
    typeof json?.error_description === "string" ? json.error_description : undefined;
  const contentType = first(res.headers["content-type"]) ?? "";
  const why =
    error !== undefined
      ? `${error}${description ? `: ${description}` : ""}`
      : res.status === 200
        ? `no access_token in the ${contentType || "untyped"} answer`
        : "no error description";
  throw authFailed(
    `the token endpoint ${where} refused ${key.client_email} (${res.status} ${why})`,
  );
}

/** Accounts by `vertex_credentials` value; a failed load is not kept, so a fixed file is picked up. */
const accounts = new Map<string, Promise<Account>>();

export function accountFor(credentials: string): Promise<Account> {
  let account = accounts.get(credentials);
  if (account === undefined) {
    account = loadCredentialsFile(credentials).then((key) =>
      "other" in key
        ? adcAccount(key.other, key.where)
        : {
            tokens: new TokenCache(() => requestAccessToken(key)),
            projectId: async () => key.project_id,
            describe: `the service account ${key.client_email}`,
          },
    );
    account.catch(() => accounts.delete(credentials));
    accounts.set(credentials, account);
  }
  return account;
}

export function authFailed(why: string, cause?: unknown): GatewayError {
  return upstreamError("auth_failed", `${LABEL}: ${why}`, { cause });
}
