/**
 * OpenAI's streamed images answer (`stream: true`, GPT-image models): server-sent events
 * `image_generation.partial_image` and `image_generation.completed` (`image_edit.*` for
 * edits), read one at a time as they arrive (`sse.ts`) and mapped to our events. An
 * `error` event (or any event whose data carries `error`) is the upstream failing
 * mid-stream. Azure OpenAI streams the same events.
 */
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import type { Allocate } from "../../runtime/buffer-pool.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { imageBytes, OPENAI_IMAGE_KEYS, parseImagesJson } from "../image-json.ts";
import { malformedBody, str } from "../json.ts";
import type { SseEvent } from "../sse.ts";
import type { UpstreamEvent } from "../types.ts";
import { fromOpenAIResponse } from "./response.ts";

const MIME_BY_FORMAT: Record<string, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

interface StreamedImage {
  type?: unknown;
  b64_json?: unknown;
  size?: unknown;
  quality?: unknown;
  background?: unknown;
  output_format?: unknown;
  partial_image_index?: unknown;
  usage?: unknown;
  error?: { message?: unknown; code?: unknown; type?: unknown };
}

/** The upstream's events → ours; `provider` names the upstream in errors. */
export async function* fromOpenAIEvents(
  events: AsyncIterable<SseEvent>,
  request: CreateImageRequest,
  provider = "OpenAI",
  allocate?: Allocate,
): AsyncGenerator<UpstreamEvent> {
  for await (const sse of events) {
    const parsed = parseImagesJson(sse.data, OPENAI_IMAGE_KEYS, allocate);
    // The event's raw data (MBs of base64) is not needed once its image is decoded.
    sse.data.length = 0;
    if (parsed === undefined) throw malformedBody("a streamed event is not JSON", provider);
    const json = parsed.json as StreamedImage | null;
    if (json === null || typeof json !== "object")
      throw malformedBody("a streamed event is not an object", provider);
    const type = str(json.type) ?? sse.event ?? "";
    if (sse.event === "error" || type === "error" || json.error !== undefined) {
      const message = str(json.error?.message) ?? "the upstream failed mid-stream";
      throw upstreamError("server_error", `${provider}: ${message}`);
    }
    if (type.endsWith(".partial_image")) {
      const b64 = str(json.b64_json);
      if (b64 === undefined) throw malformedBody("a partial image has no b64_json", provider);
      const format = str(json.output_format) ?? request.outputFormat ?? "png";
      const event: UpstreamEvent = {
        type: "partial",
        image: {
          bytes: imageBytes(b64, parsed.images),
          mimeType: MIME_BY_FORMAT[format] ?? "image/png",
        },
        index: typeof json.partial_image_index === "number" ? json.partial_image_index : 0,
      };
      const size = str(json.size);
      if (size !== undefined) event.size = size;
      const quality = str(json.quality);
      if (quality !== undefined) event.quality = quality;
      const background = str(json.background);
      if (background !== undefined) event.background = background;
      if (json.output_format !== undefined) event.outputFormat = format;
      yield event;
    } else if (type.endsWith(".completed")) {
      // The completed event is one image of OpenAI's ordinary answer: mapped by the same code.
      const { b64_json, ...rest } = json;
      yield {
        type: "completed",
        result: fromOpenAIResponse({ ...rest, data: [{ b64_json }] }, request, parsed.images),
      };
    }
    // Other event types (none documented today) are skipped, as the SDK would.
  }
}
