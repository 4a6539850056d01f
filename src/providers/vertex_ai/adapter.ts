/**
 * Vertex AI adapter: `vertex_ai/imagegeneration@*`, `vertex_ai/imagen-*` through `:predict`
 * and `vertex_ai/gemini-*-image*` through `:generateContent` on the publisher-model path
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api). The
 * mapping is shared with AI Studio (google-images/); this adds the URL and the credentials
 * (service-account.ts).
 */
import { upstreamError } from "../../errors/upstream.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { LABEL, accountFor, authFailed } from "./service-account.ts";
import { generateGoogleImages } from "../google-images/call.ts";

export const VERTEX_DEFAULT_LOCATION = "us-central1";

/** `https://{location}-aiplatform.googleapis.com/v1`; the `global` location has no region prefix. */
export function vertexDefaultBase(location: string): string {
  return location === "global"
    ? "https://aiplatform.googleapis.com/v1"
    : `https://${location}-aiplatform.googleapis.com/v1`;
}

/** `{api_base}/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`. */
export function vertexUrl(
  base: string,
  project: string,
  location: string,
  model: string,
  method: string,
): string {
  const seg = (s: string) => encodeURIComponent(s).replace(/%40/g, "@");
  return `${base.replace(/\/+$/, "")}/projects/${seg(project)}/locations/${seg(location)}/publishers/google/models/${seg(model)}:${method}`;
}

export const vertexAdapter: ProviderAdapter = {
  provider: "vertex_ai",
  async generate(call: UpstreamCall): Promise<GenerationResult> {
    const { params, model } = call.deployment;
    if (params.vertex_credentials === undefined) {
      throw authFailed(
        "no service-account key: set vertex_credentials or GOOGLE_APPLICATION_CREDENTIALS",
      );
    }
    const { key, tokens } = await accountFor(params.vertex_credentials);
    const project = params.vertex_project ?? key.project_id;
    if (project === undefined) {
      throw upstreamError(
        "misconfigured",
        `${LABEL}: no project: set vertex_project or VERTEXAI_PROJECT`,
      );
    }
    const location = params.vertex_location ?? VERTEX_DEFAULT_LOCATION;
    const base = params.api_base ?? vertexDefaultBase(location);
    return generateGoogleImages(call, {
      label: LABEL,
      url: (method) => vertexUrl(base, project, location, model, method),
      headers: async (signal) => ({ authorization: `Bearer ${await tokens.get(signal)}` }),
      onAuthRejected: () => tokens.invalidate(),
    });
  },
};
