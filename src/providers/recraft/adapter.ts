/**
 * Recraft image adapter (https://www.recraft.ai/docs/api-reference/endpoints#generate-image).
 * One upstream call per chunk of at most six images around the pure mappings.
 */
import { first, sendUpstream } from "../http.ts";
import { fanOut } from "../results.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { malformedBody, parseJson } from "../json.ts";
import { PROVIDER_NAME, fromRecraftError } from "./errors.ts";
import { fromRecraftResponse } from "./response.ts";
import { recraftSize, toRecraftRequest } from "./request.ts";

export const RECRAFT_DEFAULT_BASE = "https://external.api.recraft.ai/v1";

export const recraftAdapter: ProviderAdapter = {
  provider: "recraft",
  async generate({ deployment, request, signal }: UpstreamCall): Promise<GenerationResult> {
    const { params, spec, model } = deployment;
    const url = `${(params.api_base ?? RECRAFT_DEFAULT_BASE).replace(/\/+$/, "")}/images/generations`;
    // The catalog entry's id decides the size table and raster/vector; the configured id is what is sent.
    const size = recraftSize(request, spec);
    const n = request.n ?? spec.n.default ?? 1;
    return fanOut(n, spec.upstream_max_n, async (count) => {
      const res = await sendUpstream(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${params.api_key ?? ""}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(toRecraftRequest(request, model, count, size)),
        signal,
        timeoutMs: deployment.timeoutMs,
      });
      if (res.status !== 200) throw fromRecraftError(res);
      const json = (first(res.headers["content-type"]) ?? "").includes("json")
        ? parseJson(res.body)
        : undefined;
      if (json === undefined) throw malformedBody("the body is not JSON", PROVIDER_NAME);
      return fromRecraftResponse(json, spec.model, size);
    });
  },
};
