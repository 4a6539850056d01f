/**
 * Vertex AI adapter: `vertex_ai/imagegeneration@*`, `vertex_ai/imagen-*` through `:predict`
 * and `vertex_ai/gemini-*-image*` through `:generateContent` on the publisher-model path
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api). The
 * mapping is shared with AI Studio (google-images/); this adds the URL and the credentials
 * (service-account.ts).
 */
import { isGatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import type {
  AdapterDeployment,
  GenerationResult,
  ProviderAdapter,
  UpstreamCall,
} from "../types.ts";
import { type Account, ADC_SOURCES, defaultAdcAccount } from "./adc.ts";
import { LABEL, accountFor } from "./service-account.ts";
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

/** A credential failure, saying which deployment it is for. */
function named(e: unknown, id: string): unknown {
  if (!isGatewayError(e) || e.reason !== "auth_failed") return e;
  return upstreamError("auth_failed", `${e.message} (deployment '${id}')`, { cause: e });
}

/** A service-account key (or another ADC file) given, else Application Default Credentials. */
export function vertexAccount(credentials: string | undefined): Promise<Account> {
  return credentials === undefined ? Promise.resolve(defaultAdcAccount()) : accountFor(credentials);
}

/** At startup: whether a deployment's credentials yield a token; a warning naming it when not. */
export async function probeVertexCredentials(
  deployment: AdapterDeployment,
): Promise<string | undefined> {
  // A key file's own flow fails (and says why) on the first request; ADC is looked for here.
  if (deployment.params.vertex_credentials !== undefined) return undefined;
  try {
    const account = await vertexAccount(deployment.params.vertex_credentials);
    await account.tokens.get(new AbortController().signal);
    return undefined;
  } catch (e) {
    const sources =
      deployment.params.vertex_credentials === undefined
        ? `Application Default Credentials (${ADC_SOURCES})`
        : "vertex_credentials";
    return `Vertex AI deployment ${deployment.id} (model '${deployment.group}'): no access token from ${sources}: ${(e as Error).message}; its requests fail with upstream_auth_failed until a source works`;
  }
}

export const vertexAdapter: ProviderAdapter = {
  provider: "vertex_ai",
  async generate(call: UpstreamCall): Promise<GenerationResult> {
    const { params, model } = call.deployment;
    const { tokens, projectId } = await vertexAccount(params.vertex_credentials).catch(
      (e: unknown) => {
        throw named(e, call.deployment.id);
      },
    );
    const project = params.vertex_project ?? (await projectId());
    if (project === undefined) {
      throw upstreamError(
        "misconfigured",
        `${LABEL}: deployment '${call.deployment.id}': no project: set vertex_project or VERTEXAI_PROJECT (the credentials name none)`,
      );
    }
    const location = params.vertex_location ?? VERTEX_DEFAULT_LOCATION;
    const base = params.api_base ?? vertexDefaultBase(location);
    return generateGoogleImages(call, {
      label: LABEL,
      url: (method) => vertexUrl(base, project, location, model, method),
      headers: async (signal) => ({
        authorization: `Bearer ${await tokens.get(signal).catch((e: unknown) => {
          throw named(e, call.deployment.id);
        })}`,
      }),
      onAuthRejected: () => tokens.invalidate(),
    });
  },
};
