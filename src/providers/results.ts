/**
 * Helpers every adapter shares: splitting `n` across calls when it exceeds the upstream's
 * per-call maximum, merging the answers, and turning "nothing survived the safety filter"
 * into a refusal.
 */
import { create } from "@bufbuild/protobuf";
import { upstreamError } from "../errors/upstream.ts";
import {
  OutputTokensDetailsSchema,
  type Usage,
  UsageSchema,
} from "../gen/imagegate/v1/images_pb.js";
import type { GenerationResult } from "./types.ts";

/**
 * Runs `call(count)` in parallel for chunks of at most `perCall` images adding up to `n`,
 * and merges the answers. A refusal or error in any chunk fails the whole request (its
 * error is the one thrown), so a partial set of chunks is never billed as a success.
 */
export async function fanOut(
  n: number,
  perCall: number,
  call: (count: number) => Promise<GenerationResult>,
): Promise<GenerationResult> {
  if (n <= perCall) return call(n);
  const counts: number[] = [];
  for (let left = n; left > 0; left -= perCall) counts.push(Math.min(perCall, left));
  return mergeResults(await Promise.all(counts.map(call)));
}

const UINT32_MAX = 4_294_967_295;

export function mergeResults(results: readonly GenerationResult[]): GenerationResult {
  const [first] = results;
  if (first === undefined) throw new Error("mergeResults needs at least one result");
  const merged: GenerationResult = {
    ...first,
    images: results.flatMap((r) => r.images),
    filtered: results.reduce((sum, r) => sum + r.filtered, 0),
  };
  const usages = results.map((r) => r.usage).filter((u): u is Usage => u !== undefined);
  if (usages.length > 0) merged.usage = sumUsage(usages);
  // A provider-reported charge stands only if every part reported one.
  delete merged.costUsd;
  if (results.every((r) => r.costUsd !== undefined)) {
    merged.costUsd = results.reduce((sum, r) => sum + (r.costUsd ?? 0), 0);
  }
  return merged;
}

function sumUsage(usages: readonly Usage[]): Usage {
  const total = create(UsageSchema, { inputTokensDetails: {} });
  if (usages.some((u) => u.outputTokensDetails !== undefined))
    total.outputTokensDetails = create(OutputTokensDetailsSchema);
  for (const u of usages) {
    total.inputTokens += u.inputTokens;
    total.outputTokens += u.outputTokens;
    total.totalTokens += u.totalTokens;
    total.inputTokensDetails!.textTokens += u.inputTokensDetails?.textTokens ?? 0;
    total.inputTokensDetails!.imageTokens += u.inputTokensDetails?.imageTokens ?? 0;
    if (total.outputTokensDetails) {
      total.outputTokensDetails.imageTokens += u.outputTokensDetails?.imageTokens ?? 0;
      total.outputTokensDetails.textTokens += u.outputTokensDetails?.textTokens ?? 0;
    }
  }
  // Counts are uint32 on the wire: a sum past it is clamped, never a failed encoding.
  const clamp = (n: number) => Math.min(n, UINT32_MAX);
  total.inputTokens = clamp(total.inputTokens);
  total.outputTokens = clamp(total.outputTokens);
  total.totalTokens = clamp(total.totalTokens);
  const inDetails = total.inputTokensDetails!;
  inDetails.textTokens = clamp(inDetails.textTokens);
  inDetails.imageTokens = clamp(inDetails.imageTokens);
  if (total.outputTokensDetails) {
    total.outputTokensDetails.imageTokens = clamp(total.outputTokensDetails.imageTokens);
    total.outputTokensDetails.textTokens = clamp(total.outputTokensDetails.textTokens);
  }
  return total;
}

/**
 * A result whose every image was filtered is the provider's refusal, never an empty
 * success (contract: "when none survive, the answer is the refusal error").
 */
export function requireImages(
  result: GenerationResult,
  provider: string,
  reason?: string,
): GenerationResult {
  if (result.images.length > 0) return result;
  if (result.filtered > 0 || reason !== undefined) {
    return refused(
      provider,
      reason ?? `all ${result.filtered} image(s) were filtered by the provider's safety system`,
    );
  }
  throw upstreamError("no_images", `${provider} answered without any image`);
}

function refused(provider: string, reason: string): never {
  throw upstreamError(
    "refused",
    `${provider}: the request was refused by the provider's safety system: ${reason}`,
    { details: { provider_reason: reason } },
  );
}
