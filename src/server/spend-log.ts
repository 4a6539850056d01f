/**
 * One spend-log row per image request, answered or failed (db/spend-log.ts), from what the
 * call learned (CallInfo) and who asked (the key, the request's `user`). Placed before the
 * auth interceptor, so requests refused for their key (401, no `api_key` unless the key is
 * known but blocked or expired... then still none: the key is not trusted) or their rate
 * (429) are rows too; the row is only queued here (the writer flushes in batches off the
 * request path). A streamed request's row is written when its stream is over, with what
 * it cost.
 */
import type { Interceptor } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import type { SpendLogWriter } from "../db/spend-log.ts";
import { ImageService } from "../gen/imagegate/v1/images_pb.js";
import { kCallInfo } from "../call/call-info.ts";
import { watchStream } from "../call/stream-hooks.ts";

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
    type Asked = { user?: string; safetyIdentifier?: string } | undefined;
    let asked: Asked = req.stream ? undefined : (req.message as Asked);
    // A server stream's request arrives as a stream of one message: noted as it passes.
    if (req.stream) req = { ...req, message: noteFirst(req.message, (m) => (asked = m as Asked)) };
    const write = (status: "success" | "failure") => {
      const info = req.contextValues.get(kCallInfo);
      const key = req.contextValues.get(kKey);
      writer.write({
        requestId: info?.requestId ?? "",
        apiKey: key?.id,
        keyAlias: key?.name,
        endUser: asked?.user ?? asked?.safetyIdentifier,
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
        attemptLog: info?.attemptLog,
      });
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (e) {
      write("failure");
      throw e;
    }
    if (!res.stream) {
      write("success");
      return res;
    }
    // A stream (CreateImageStream, EditImageStream) is priced when its events are over.
    return {
      ...res,
      message: watchStream(res.message, {
        end: (failure) => write(failure === undefined ? "success" : "failure"),
      }),
    };
  };
}

async function* noteFirst<T>(source: AsyncIterable<T>, note: (message: T) => void) {
  for await (const message of source) {
    note(message);
    yield message;
  }
}
