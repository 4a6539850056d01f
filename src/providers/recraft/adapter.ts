/**
 * Recraft image adapter (https://www.recraft.ai/docs/api-reference/endpoints#generate-image):
 * generations as JSON, edits as multipart to inpaint or imageToImage (edit.ts). One upstream
 * call per chunk of at most six images around the pure mappings.
 */
import { first, sendUpstream } from "../http.ts";
import { fanOut } from "../results.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { malformedBody, parseJson } from "../json.ts";
import { PROVIDER_NAME, fromRecraftError } from "./errors.ts";
import { fromRecraftResponse } from "./response.ts";
import { recraftSize, toRecraftRequest } from "./request.ts";
import { planRecraftEdit, toRecraftEditForm } from "./edit.ts";
import { encodeMultipart } from "../multipart.ts";

export const RECRAFT_DEFAULT_BASE = "https://external.api.recraft.ai/v1";

export const recraftAdapter: ProviderAdapter = {
  provider: "recraft",
  async generate({ deployment, request, signal, edit }: UpstreamCall): Promise<GenerationResult> {
    const { params, spec, model } = deployment;
    const base = (params.api_base ?? RECRAFT_DEFAULT_BASE).replace(/\/+$/, "");
    const n = request.n ?? spec.n.default ?? 1;
    const planned = edit === undefined ? undefined : await planRecraftEdit(request, edit, model);
    // The catalog entry's id decides the size table and raster/vector; the configured id is what is sent.
    const size = planned?.size ?? recraftSize(request, spec);
    return fanOut(n, spec.upstream_max_n, async (count) => {
      const body =
        planned === undefined
          ? {
              url: `${base}/images/generations`,
              contentType: "application/json",
              body: Buffer.from(JSON.stringify(toRecraftRequest(request, model, count, size))),
            }
          : {
              url: `${base}${planned.path}`,
              ...encodeMultipart(toRecraftEditForm(request, planned, model, count)),
            };
      const res = await sendUpstream(body.url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${params.api_key ?? ""}`,
          "content-type": body.contentType,
        },
        body: body.body,
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
