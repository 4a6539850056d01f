/**
 * Google AI Studio (the Gemini API) adapter: `gemini/imagen-*` through `:predict` and
 * `gemini/gemini-*-image*` through `:generateContent`, authenticated by `x-goog-api-key`
 * (https://ai.google.dev/api#authentication). The mapping is shared with Vertex AI in
 * google-images/.
 */
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { generateGoogleImages } from "../google-images/call.ts";

export const GEMINI_DEFAULT_BASE = "https://generativelanguage.googleapis.com/v1beta";

/** `{api_base}/models/{model}:{method}` (contract: api_base table). */
export function geminiUrl(base: string, model: string, method: string): string {
  return `${base.replace(/\/+$/, "")}/models/${encodeURIComponent(model)}:${method}`;
}

export const geminiAdapter: ProviderAdapter = {
  provider: "gemini",
  generate(call: UpstreamCall): Promise<GenerationResult> {
    const { params, model } = call.deployment;
    const base = params.api_base ?? GEMINI_DEFAULT_BASE;
    const apiKey = params.api_key ?? "";
    return generateGoogleImages(call, {
      label: "Google AI Studio",
      url: (method) => geminiUrl(base, model, method),
      headers: async () => ({ "x-goog-api-key": apiKey }),
    });
  },
};
