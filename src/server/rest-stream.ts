/**
 * REST's answer to a streaming call (`stream: true`): OpenAI's server-sent events, as the
 * `openai` SDK's stream parser reads them. Each event is `event: TYPE\ndata: JSON\n\n`,
 * the JSON being the event message's fields (OpenAI's names) with `type` first. The answer
 * starts with the first event: until then the call can still fail as an ordinary JSON
 * error with its status (the caller, `rest.ts`, writes it); after it, a failure is one
 * `error` event `{type: "error", error: {message, type, param, code}}` and the end.
 *
 * One event is in memory at a time: the next is asked for only once the previous one has
 * been handed to the socket (and the socket drained). The gateway's `write_timeout`
 * (exchanges.ts) cuts an answer only while written bytes stay unread: a long wait for the
 * upstream's next event, with nothing pending, is not a stall and is not cut.
 */
import { createAsyncIterable, transformInvokeImplementation } from "./connect-internals.ts";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext, Interceptor, MethodImplSpec } from "@connectrpc/connect";
import { connectToOpenAI, toConnectError } from "../errors/render.ts";
import {
  CompletedImageEventSchema,
  type ImageStreamEvent,
  PartialImageEventSchema,
} from "../gen/imagegate/v1/images_pb.js";
import { messageToJsonBytes } from "./rest-json.ts";
import type { NodeResponse } from "./universal.ts";

/** The SSE event types' prefix, by streaming method (OpenAI names generations' and edits' apart). */
const EVENT_PREFIX: Record<string, string> = {
  CreateImageStream: "image_generation",
  EditImageStream: "image_edit",
};

const JSON_OPTIONS = { alwaysEmitImplicit: true };

export async function serveEventStream(
  spec: Extract<MethodImplSpec, { kind: "server_streaming" }>,
  context: HandlerContext,
  input: MessageShape<DescMessage>,
  res: NodeResponse,
  interceptors: Interceptor[],
): Promise<void> {
  const prefix = EVENT_PREFIX[spec.method.name] ?? "image_generation";
  const events = transformInvokeImplementation(
    spec,
    context as never,
    interceptors,
  )(createAsyncIterable([input]))[Symbol.asyncIterator]() as AsyncIterator<ImageStreamEvent>;
  // Before the first event: a failure throws, and the caller answers it as JSON.
  const first = await events.next();
  const headers = Object.fromEntries(context.responseHeader);
  headers["content-type"] = "text/event-stream; charset=utf-8";
  headers["cache-control"] = "no-cache";
  // Proxies (nginx) would otherwise hold the events back.
  headers["x-accel-buffering"] = "no";
  res.writeHead(200, headers);
  res.flushHeaders();
  let done = first.done === true;
  try {
    let event = first.value as ImageStreamEvent | undefined;
    while (!done && event !== undefined) {
      if (!writeEvent(res, prefix, event)) await drained(res);
      if (res.destroyed) break;
      const next = await events.next();
      done = next.done === true;
      event = next.value as ImageStreamEvent | undefined;
    }
  } catch (e) {
    done = true;
    if (!res.destroyed) {
      const { body } = connectToOpenAI(toConnectError(e));
      res.write(`event: error\ndata: ${JSON.stringify({ type: "error", ...body })}\n\n`);
    }
  } finally {
    // The client went away mid-stream: the implementation's own cleanup runs (and the
    // call's signal, aborted by the caller, cancels the upstream call).
    if (!done) await events.return?.();
  }
  res.end();
}

/** Writes one event's frame (its JSON in place, not copied into one buffer); false when the socket is full. */
function writeEvent(res: NodeResponse, prefix: string, event: ImageStreamEvent): boolean {
  const { case: kind, value } = event.event;
  if (kind === undefined) return true;
  const type = kind === "partialImage" ? `${prefix}.partial_image` : `${prefix}.completed`;
  const json =
    kind === "partialImage"
      ? messageToJsonBytes(PartialImageEventSchema, value, JSON_OPTIONS)
      : messageToJsonBytes(CompletedImageEventSchema, value, JSON_OPTIONS);
  // `{…}` → `{"type":"…",…}`: the type first, as OpenAI writes it.
  res.write(`event: ${type}\ndata: {"type":"${type}",`);
  res.write(json.subarray(1));
  return res.write("\n\n");
}

function drained(res: NodeResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}
