/**
 * Azure OpenAI image adapter
 * (https://learn.microsoft.com/azure/ai-services/openai/reference#image-generation).
 * The body and the answer are OpenAI's, so the OpenAI mappings are reused; what is Azure's
 * own is the URL (deployment + api-version), the auth (api-key or an Entra ID bearer token)
 * and a few error shapes.
 */
import { isGatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { first, sendUpstream } from "../http.ts";
import { OPENAI_IMAGE_KEYS, parseImagesJson } from "../image-json.ts";
import type {
  AdapterDeployment,
  GenerationResult,
  ProviderAdapter,
  UpstreamCall,
} from "../types.ts";
import { malformedBody } from "../json.ts";
import { EntraTokenCache, entraCredentials } from "./entra.ts";
import { identityTokens, usesIdentity } from "./identity.ts";
import { PROVIDER_NAME, fromAzureError } from "./errors.ts";
import { apiVersionFor, azureImagesUrl, toAzureRequest } from "./request.ts";
import { fromOpenAIResponse } from "../openai/response.ts";
import { fromOpenAIEvents } from "../openai/stream.ts";
import { streamUpstream } from "../sse.ts";
import { toOpenAIEditForm } from "../openai/edit.ts";
import { encodeMultipart } from "../multipart.ts";

export const tokens = new EntraTokenCache();

async function authHeaders(
  deployment: AdapterDeployment,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  const { params } = deployment;
  if (params.azure_ad_token !== undefined)
    return { authorization: `Bearer ${params.azure_ad_token}` };
  const creds = entraCredentials(params);
  if (creds !== undefined)
    return { authorization: `Bearer ${await tokens.token(creds, deployment.timeoutMs, signal)}` };
  if (params.api_key !== undefined) return { "api-key": params.api_key };
  try {
    return { authorization: `Bearer ${await identityTokens().get(signal)}` };
  } catch (e) {
    if (!isGatewayError(e) || e.reason !== "auth_failed") throw e;
    throw upstreamError("auth_failed", `${e.message} (deployment '${deployment.id}')`, {
      cause: e,
    });
  }
}

export const azureAdapter: ProviderAdapter = {
  provider: "azure",
  async stream({ deployment, request, signal, allocate, edit }: UpstreamCall) {
    const { params, spec } = deployment;
    // A streamed edit is the edit's multipart form (as OpenAI's) with `stream=true`.
    const form =
      edit === undefined
        ? undefined
        : encodeMultipart(toOpenAIEditForm(request, edit, undefined, false, true));
    const url = azureImagesUrl(
      params.api_base ?? "",
      deployment.model,
      apiVersionFor(spec.family, params.api_version),
      form === undefined ? "generations" : "edits",
    );
    const headers = {
      ...(await authHeaders(deployment, signal)),
      "content-type": form?.contentType ?? "application/json",
    };
    const body =
      form?.body ??
      JSON.stringify({
        ...toAzureRequest(request, spec.family),
        stream: true,
        ...(request.partialImages !== undefined ? { partial_images: request.partialImages } : {}),
      });
    const res = await streamUpstream(url, {
      method: "POST",
      headers,
      body,
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (!res.stream) {
      const creds = entraCredentials(params);
      if (res.response.status === 401 && creds !== undefined && params.azure_ad_token === undefined)
        tokens.invalidate(creds);
      if (res.response.status !== 200) throw fromAzureError(res.response, deployment.model);
      throw malformedBody(
        "a streamed request was not answered as server-sent events",
        PROVIDER_NAME,
      );
    }
    return fromOpenAIEvents(res.events, request, PROVIDER_NAME, allocate);
  },
  async generate({
    deployment,
    request,
    signal,
    allocate,
    edit,
  }: UpstreamCall): Promise<GenerationResult> {
    const { params, spec } = deployment;
    // Edits (GPT-image deployments; Azure has no variations) are multipart, as OpenAI's.
    const form =
      edit === undefined
        ? undefined
        : encodeMultipart(toOpenAIEditForm(request, edit, undefined, spec.family === "dalle"));
    const url = azureImagesUrl(
      params.api_base ?? "",
      deployment.model,
      apiVersionFor(spec.family, params.api_version),
      form === undefined ? "generations" : "edits",
    );
    const headers = {
      ...(await authHeaders(deployment, signal)),
      "content-type": form?.contentType ?? "application/json",
    };
    const res = await sendUpstream(url, {
      method: "POST",
      headers,
      body: form?.body ?? JSON.stringify(toAzureRequest(request, spec.family)),
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (res.status !== 200) {
      const creds = entraCredentials(params);
      if (res.status === 401 && creds !== undefined && params.azure_ad_token === undefined)
        tokens.invalidate(creds);
      if (res.status === 401 && usesIdentity(deployment)) identityTokens().invalidate();
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
