/**
 * AWS Bedrock adapter: `bedrock/<modelId>` → `POST {api_base}/model/{modelId}/invoke`
 * (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html),
 * signed with SigV4. The body has one of four shapes, chosen by the catalog entry's `family`
 * (plan.ts, request.ts, response.ts), or an edit task's (edit.ts, edit-request.ts); this file
 * makes the signed calls.
 */
import { sendUpstream } from "../http.ts";
import { parseImagesJson } from "../image-json.ts";
import { fanOut, requireImages } from "../results.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "../types.ts";
import { malformedBody } from "../json.ts";
import { BEDROCK_IMAGE_KEYS, type BedrockPlan } from "./shapes.ts";
import { fromBedrockResponse, planBedrockRequest, seedForCall, toBedrockRequest } from "./plan.ts";
import { PROVIDER, fromBedrockError } from "./errors.ts";
import { planBedrockEdit } from "./edit.ts";
import { bedrockSigner, credentialsFailed, credentialsRefused } from "./credentials.ts";
import { bedrockBaseUrl, bedrockInvokeUrl, signBedrockRequest } from "./signing.ts";

export async function invoke(
  call: UpstreamCall,
  plan: BedrockPlan,
  count: number,
  seed: number | undefined,
): Promise<GenerationResult> {
  const { deployment, signal } = call;
  const { params } = deployment;
  const url = bedrockInvokeUrl(bedrockBaseUrl(params), deployment.model);
  const body = JSON.stringify(toBedrockRequest(plan, count, seed));
  let headers: Record<string, string>;
  try {
    headers = await signBedrockRequest({ url, body, signer: bedrockSigner(params) });
  } catch (e) {
    // Signing fails only when the credential source does.
    throw credentialsFailed(deployment, e);
  }
  const res = await sendUpstream(url, {
    method: "POST",
    headers,
    body,
    signal,
    timeoutMs: deployment.timeoutMs,
  });
  if (res.status !== 200) {
    const error = fromBedrockError(res);
    if (error.reason === "auth_failed") credentialsRefused(params);
    throw error;
  }
  const parsed = parseImagesJson(res.chunks, BEDROCK_IMAGE_KEYS, call.allocate);
  if (parsed === undefined) throw malformedBody("the body is not JSON", PROVIDER);
  return fromBedrockResponse(parsed.json, plan, count, parsed.images);
}

export const bedrockAdapter: ProviderAdapter = {
  provider: "bedrock",
  async generate(call: UpstreamCall): Promise<GenerationResult> {
    const { deployment, request } = call;
    const plan =
      call.edit === undefined
        ? planBedrockRequest(request, deployment.spec)
        : await planBedrockEdit(request, call.edit, deployment.spec);
    const n = request.n ?? deployment.spec.n.default ?? 1;
    const perCall = deployment.spec.upstream_max_n;
    const calls = Math.ceil(n / perCall);
    let index = 0; // fanOut starts the calls in order, so this numbers them
    const result = await fanOut(n, perCall, (count) =>
      invoke(call, plan, count, seedForCall(plan, index++, calls)),
    );
    return requireImages(result, PROVIDER);
  },
};
