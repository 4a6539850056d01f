/**
 * Azure OpenAI's URL (deployment + api-version) and body
 * (https://learn.microsoft.com/azure/ai-services/openai/reference#image-generation): the body is
 * OpenAI's, so OpenAI's mapping is reused.
 */
import type { Family } from "../../catalog/catalog.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { type OpenAIImagesRequest, toOpenAIRequest } from "../openai/request.ts";

/**
 * The api-version sent when the deployment sets none: a GA version for DALL·E 3, and the
 * first that serves GPT-image (https://learn.microsoft.com/azure/ai-services/openai/api-version-lifecycle).
 */
export const DEFAULT_API_VERSION: Readonly<Partial<Record<Family, string>>> = {
  dalle: "2024-10-21",
  "gpt-image": "2025-04-01-preview",
};

const FALLBACK_API_VERSION = "2025-04-01-preview";

/**
 * `{api_base}/openai/deployments/{deployment}/images/generations?api-version=…`, or
 * `…/images/edits` for an edit (multipart, as OpenAI's; docs/research/edits.md §2).
 */
export function azureImagesUrl(
  apiBase: string,
  deploymentName: string,
  apiVersion: string,
  operation: "generations" | "edits" = "generations",
): string {
  const base = apiBase.replace(/\/+$/, "");
  return `${base}/openai/deployments/${encodeURIComponent(deploymentName)}/images/${operation}?api-version=${encodeURIComponent(apiVersion)}`;
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
