/**
 * One spend-log row per image request, answered or failed (db/spend-log.ts), from what the
 * call learned (CallInfo) and who asked (the key, the request's `user`). Placed before the
 * auth interceptor, so requests refused for their key (401, no `api_key` unless the key is
 * known but blocked or expired... then still none: the key is not trusted) or their rate
 * (429) are rows too; the row is only queued here (the writer flushes in batches off the
 * request path).
 */
import type { Interceptor } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import type { SpendLogWriter } from "../db/spend-log.ts";
import { ImageService } from "../gen/imagegate/v1/images_pb.js";
import { kCallInfo } from "../call/call-info.ts";

const IMAGE_METHODS = new Set([
  "CreateImage",
  "CreateImageStream",
  "EditImage",
  "EditImageStream",
  "CreateImageVariation",
]);

export function spendLogInterceptor(writer: SpendLogWriter): Interceptor {
  return (next) => async (req) => {
    // Image requests only: model listings cost nothing and are not spend.
    if (req.service.typeName !== ImageService.typeName || !IMAGE_METHODS.has(req.method.name))
      return next(req);
    const startTime = Date.now();
    let status: "success" | "failure" = "failure";
    try {
      const res = await next(req);
      status = "success";
      return res;
    } finally {
      const info = req.contextValues.get(kCallInfo);
      const key = req.contextValues.get(kKey);
      const message = req.stream
        ? undefined
        : (req.message as { user?: string; safetyIdentifier?: string });
      writer.write({
        requestId: info?.requestId ?? "",
        apiKey: key?.id,
        keyAlias: key?.name,
        endUser: message?.user ?? message?.safetyIdentifier,
        model: info?.model,
        modelId: info?.deployment,
        provider: info?.provider,
        status,
        spend: info?.costUsd ?? 0,
        images: status === "success" ? (info?.images ?? 0) : 0,
        size: info?.size,
        quality: info?.quality,
        startTime,
        endTime: Date.now(),
        attempts: info?.attempts ?? 0,
      });
    }
  };
}
