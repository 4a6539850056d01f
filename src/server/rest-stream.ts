/**
 * REST's answer to a streaming call (`stream: true`): OpenAI's server-sent events, as the
 * `openai` SDK's stream parser reads them. Each event is `event: TYPE\ndata: JSON\n\n`,
 * the JSON being the event message's fields (OpenAI's names) with `type` first. The answer
 * starts with the first event: until then the call can still fail as an ordinary JSON
 * error with its status (the caller, `rest.ts`, writes it); after it, a failure is one
 * `error` event `{type: "error", error: {message, type, param, code}}` and the end.
 *
 * One event is in memory at a time: the next is asked for only once the previous one has
 * been handed to the socket, and the pooled memory that held it (`call/event-memory.ts`) holds
 * the next. The gateway's `write_timeout`
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
import type { Allocate } from "../runtime/buffer-pool.ts";
import { kBufferLease } from "../call/call-info.ts";
import { EventMemory, kEventMemory } from "../call/event-memory.ts";
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
  const lease = context.values.get(kBufferLease);
  // Each event's image and JSON in pooled memory, given back once the event has left.
  const memory = lease === undefined ? undefined : new EventMemory(lease);
  if (memory !== undefined) context.values.set(kEventMemory, memory);
  try {
    await writeEvents(spec, context, input, res, interceptors, prefix, memory);
  } finally {
    memory?.end();
  }
}

async function writeEvents(
  spec: Extract<MethodImplSpec, { kind: "server_streaming" }>,
  context: HandlerContext,
  input: MessageShape<DescMessage>,
  res: NodeResponse,
  interceptors: Interceptor[],
  prefix: string,
  memory: EventMemory | undefined,
): Promise<void> {
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
  const allocate = memory?.allocate ?? Buffer.allocUnsafe;
  try {
    let event = first.value as ImageStreamEvent | undefined;
    while (!done && event !== undefined) {
      await writeEvent(res, prefix, event, allocate);
      memory?.written();
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

/**
 * Writes one event's frame and resolves once the socket has taken it (so its memory can
 * take the next event's JSON): one event in flight at a time.
 */
function writeEvent(
  res: NodeResponse,
  prefix: string,
  event: ImageStreamEvent,
  allocate: Allocate,
): Promise<void> {
  const { case: kind, value } = event.event;
  if (kind === undefined) return Promise.resolve();
  const type = kind === "partialImage" ? `${prefix}.partial_image` : `${prefix}.completed`;
  const json =
    kind === "partialImage"
      ? messageToJsonBytes(PartialImageEventSchema, value, JSON_OPTIONS, allocate)
      : messageToJsonBytes(CompletedImageEventSchema, value, JSON_OPTIONS, allocate);
  // `{…}` → `{"type":"…",…}`: the type first, as OpenAI writes it.
  res.write(`event: ${type}\ndata: {"type":"${type}",`);
  res.write(json.subarray(1));
  return new Promise((resolve) => {
    const done = () => {
      res.off("close", done);
      resolve();
    };
    res.once("close", done);
    res.write("\n\n", () => done());
  });
}
