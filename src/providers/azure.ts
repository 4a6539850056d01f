/**
 * Azure OpenAI image adapter
 * (https://learn.microsoft.com/azure/ai-services/openai/reference#image-generation).
 * The body and the answer are OpenAI's, so the OpenAI mappings are reused; what is Azure's
 * own is the URL (deployment + api-version), the auth (api-key or an Entra ID bearer token)
 * and a few error shapes.
 */
import { createHash } from "node:crypto";
import type { Family } from "../catalog/catalog.ts";
import type { Deployment } from "../config/deployment.ts";
import type { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import { first, sendUpstream, type UpstreamResponse } from "./http.ts";
import { OPENAI_IMAGE_KEYS, parseImagesJson } from "./image-json.ts";
import {
  fromOpenAIError,
  fromOpenAIResponse,
  type OpenAIImagesRequest,
  toOpenAIRequest,
} from "./openai.ts";
import { statusError } from "./status.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "./types.ts";
import { type FetchedToken, TokenCache } from "./token-cache.ts";
import { malformedBody, parseJson } from "./json.ts";

const PROVIDER_NAME = "Azure OpenAI";

/**
 * The api-version sent when the deployment sets none: a GA version for DALL·E 3, and the
 * first that serves GPT-image (https://learn.microsoft.com/azure/ai-services/openai/api-version-lifecycle).
 */
export const DEFAULT_API_VERSION: Readonly<Partial<Record<Family, string>>> = {
  dalle: "2024-10-21",
  "gpt-image": "2025-04-01-preview",
};
const FALLBACK_API_VERSION = "2025-04-01-preview";

export const ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com";
/** The audience of Azure OpenAI (Cognitive Services) tokens. */
export const ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default";

/** `{api_base}/openai/deployments/{deployment}/images/generations?api-version=…` */
export function azureImagesUrl(
  apiBase: string,
  deploymentName: string,
  apiVersion: string,
): string {
  const base = apiBase.replace(/\/+$/, "");
  return `${base}/openai/deployments/${encodeURIComponent(deploymentName)}/images/generations?api-version=${encodeURIComponent(apiVersion)}`;
}

export function apiVersionFor(family: Family, configured: string | undefined): string {
  return configured ?? DEFAULT_API_VERSION[family] ?? FALLBACK_API_VERSION;
}

/**
 * Our request → Azure's body: OpenAI's, without `model` (the deployment names it).
 * `response_format` goes to DALL·E only; GPT-image deployments always answer base64.
 */
export function toAzureRequest(req: CreateImageRequest, family: Family): OpenAIImagesRequest {
  return toOpenAIRequest(req, undefined, family === "dalle");
}

/**
 * Azure's error answers → the contract's errors. The shapes Azure shares with OpenAI
 * (content_policy_violation with `inner_error.content_filter_results`, moderation_blocked,
 * 401 `code:"401"`, 429 `code:"429"`) go through `fromOpenAIError`; a missing deployment or
 * an api-version that does not serve the model is the gateway's configuration, never the
 * client's request, so those are upstream failures naming what to fix.
 */
export function fromAzureError(res: UpstreamResponse, deploymentName: string): GatewayError {
  const err = (parseJson(res.body) as { error?: { code?: unknown; message?: unknown } } | undefined)
    ?.error;
  const code =
    typeof err?.code === "string" || typeof err?.code === "number" ? String(err.code) : undefined;
  const upstreamMessage =
    typeof err?.message === "string"
      ? err.message
      : res.body.toString("utf8").slice(0, 200) || "no body";
  if (res.status === 404) {
    if (code === "DeploymentNotFound") {
      return upstreamError(
        "not_found",
        `${PROVIDER_NAME}: deployment '${deploymentName}' does not exist at this resource (DeploymentNotFound); check the model name and api_base`,
      );
    }
    return statusError({
      provider: PROVIDER_NAME,
      status: res.status,
      upstreamMessage,
      notFoundHint: "check api_base and api_version",
    });
  }
  if (code === "OperationNotSupported") {
    return upstreamError(
      "operation_not_supported",
      `${PROVIDER_NAME}: deployment '${deploymentName}' cannot generate images with this api_version: ${upstreamMessage}`,
    );
  }
  const mapped = fromOpenAIError(res, PROVIDER_NAME);
  if (mapped.kind === "rate_limit" && mapped.retryAfterSeconds === undefined) {
    // Azure also says it in words: "…Please retry after 20 seconds…".
    const hint = /retry after (\d+(?:\.\d+)?) second/i.exec(upstreamMessage);
    if (hint) {
      return upstreamError(mapped.reason ?? "throttled", mapped.message, {
        retryAfterSeconds: Number(hint[1]),
      });
    }
  }
  return mapped;
}

// ---------------------------------------------------------------------------------------------
// Entra ID (client credentials)
// ---------------------------------------------------------------------------------------------

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
        ? `: ${json.error_description.split(/\r?\n/)[0]!.slice(0, 300)}`
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

// ---------------------------------------------------------------------------------------------
// The call
// ---------------------------------------------------------------------------------------------

const tokens = new EntraTokenCache();

/** Which credential a deployment uses: its own Entra settings win over a key filled from the environment. */
export function entraCredentials(params: Deployment["params"]): EntraCredentials | undefined {
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

async function authHeaders(
  deployment: Deployment,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  const { params } = deployment;
  if (params.azure_ad_token !== undefined)
    return { authorization: `Bearer ${params.azure_ad_token}` };
  const creds = entraCredentials(params);
  if (creds !== undefined)
    return { authorization: `Bearer ${await tokens.token(creds, deployment.timeoutMs, signal)}` };
  return { "api-key": params.api_key ?? "" };
}

export const azureAdapter: ProviderAdapter = {
  provider: "azure",
  async generate({
    deployment,
    request,
    signal,
    allocate,
  }: UpstreamCall): Promise<GenerationResult> {
    const { params, spec } = deployment;
    const url = azureImagesUrl(
      params.api_base ?? "",
      deployment.model,
      apiVersionFor(spec.family, params.api_version),
    );
    const headers = {
      ...(await authHeaders(deployment, signal)),
      "content-type": "application/json",
    };
    const res = await sendUpstream(url, {
      method: "POST",
      headers,
      body: JSON.stringify(toAzureRequest(request, spec.family)),
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (res.status !== 200) {
      const creds = entraCredentials(params);
      if (res.status === 401 && creds !== undefined && params.azure_ad_token === undefined)
        tokens.invalidate(creds);
      throw fromAzureError(res, deployment.model);
    }
    const contentType = first(res.headers["content-type"]) ?? "";
    const parsed = contentType.includes("json")
      ? parseImagesJson(res.chunks, OPENAI_IMAGE_KEYS, allocate)
      : undefined;
    if (parsed === undefined) throw malformedBody("the body is not JSON", PROVIDER_NAME);
    return fromOpenAIResponse(parsed.json, request, parsed.images);
  },
};
