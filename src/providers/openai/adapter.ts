/**
 * OpenAI Images API adapter (https://platform.openai.com/docs/api-reference/images/create):
 * the one upstream call around the pure mappings of request.ts (generations), edit.ts
 * (edits and variations), response.ts and errors.ts.
 */
import { first, sendUpstream } from "../http.ts";
import { OPENAI_IMAGE_KEYS, parseImagesJson } from "../image-json.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { malformedBody } from "../json.ts";
import { fromOpenAIError } from "./errors.ts";
import { fromOpenAIResponse } from "./response.ts";
import { toOpenAIRequest } from "./request.ts";
import { fromOpenAIEvents } from "./stream.ts";
import { streamUpstream } from "../sse.ts";
import { openAIEditPath, toOpenAIEditForm } from "./edit.ts";
import { encodeMultipart } from "../multipart.ts";

export const OPENAI_DEFAULT_BASE = "https://api.openai.com/v1";

function headersFor(params: UpstreamCall["deployment"]["params"]): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${params.api_key ?? ""}`,
    "content-type": "application/json",
  };
  if (params.organization !== undefined) headers["openai-organization"] = params.organization;
  return headers;
}

export const openaiAdapter: ProviderAdapter = {
  provider: "openai",
  async stream({ deployment, request, signal, allocate, edit }: UpstreamCall) {
    const { params } = deployment;
    const base = (params.api_base ?? OPENAI_DEFAULT_BASE).replace(/\/+$/, "");
    const headers = headersFor(params);
    let url = `${base}/images/generations`;
    let body: string | Uint8Array[];
    if (edit === undefined) {
      body = JSON.stringify({
        ...toOpenAIRequest(request, deployment.model, false),
        stream: true,
        ...(request.partialImages !== undefined ? { partial_images: request.partialImages } : {}),
      });
    } else {
      // A streamed edit is the edit's multipart form with `stream=true`.
      const form = encodeMultipart(toOpenAIEditForm(request, edit, deployment.model, false, true));
      headers["content-type"] = form.contentType;
      body = form.body;
      url = `${base}${openAIEditPath(edit)}`;
    }
    const res = await streamUpstream(url, {
      method: "POST",
      headers,
      body,
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (!res.stream) {
      if (res.response.status !== 200) throw fromOpenAIError(res.response);
      throw malformedBody("a streamed request was not answered as server-sent events");
    }
    return fromOpenAIEvents(res.events, request, "OpenAI", allocate);
  },
  async generate({
    deployment,
    request,
    signal,
    allocate,
    edit,
  }: UpstreamCall): Promise<GenerationResult> {
    const { params } = deployment;
    const base = (params.api_base ?? OPENAI_DEFAULT_BASE).replace(/\/+$/, "");
    const headers: Record<string, string> = {
      authorization: `Bearer ${params.api_key ?? ""}`,
      "content-type": "application/json",
    };
    if (params.organization !== undefined) headers["openai-organization"] = params.organization;
    const dalle = deployment.spec.family === "dalle";
    let url = `${base}/images/generations`;
    let body: string | Uint8Array[];
    if (edit === undefined)
      body = JSON.stringify(toOpenAIRequest(request, deployment.model, dalle));
    else {
      // Edits and variations are multipart/form-data, as OpenAI's SDK sends them.
      const form = encodeMultipart(toOpenAIEditForm(request, edit, deployment.model, dalle));
      headers["content-type"] = form.contentType;
      body = form.body;
      url = `${base}${openAIEditPath(edit)}`;
    }
    const res = await sendUpstream(url, {
      method: "POST",
      headers,
      body,
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (res.status !== 200) throw fromOpenAIError(res);
    const contentType = first(res.headers["content-type"]) ?? "";
    const parsed = contentType.includes("json")
      ? parseImagesJson(res.chunks, OPENAI_IMAGE_KEYS, allocate)
      : undefined;
    if (parsed === undefined) throw malformedBody("the body is not JSON");
    return fromOpenAIResponse(parsed.json, request, parsed.images);
  },
};
