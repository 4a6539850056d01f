/**
 * ImageService.CreateImageStream (and EditImageStream, through `streamImages`): the request
 * as a stream of events, for every model.
 * Where the deployment's provider streams (OpenAI and Azure GPT-image models), its partial
 * images are passed on as they arrive and each finished image is a `completed` event;
 * elsewhere the router's ordinary call runs and each image of its answer is one `completed`
 * event, so a client has one code path for every model. The router retries and falls back
 * only until the first event: after it, a failure is the stream's (one `error` event on
 * REST, the RPC's status elsewhere). Whatever the upstream billed is priced, settled against
 * the key's budget and reported (headers, trailer, span, metrics, log), also when the stream
 * fails or the client goes away mid-way.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { EditInput } from "../catalog/edit-rules.ts";
import { resolveDefaults } from "../catalog/validate.ts";
import { invalidParam } from "../errors/errors.ts";
import {
  CompletedImageEventSchema,
  type CreateImageRequest,
  type ImageStreamEvent,
  ImageStreamEventSchema,
  PartialImageEventSchema,
} from "../gen/imagegate/v1/images_pb.js";
import { costOf, type InputImages, type PriceList } from "../pricing/pricing.ts";
import type { GeneratedImage, GenerationResult, UpstreamEvent } from "../providers/types.ts";
import type { ModelResolver } from "../router/resolve.ts";
import type { Router } from "../router/router.ts";
import { kBufferLease } from "../call/call-info.ts";
import { kEventMemory } from "../call/event-memory.ts";
import type { ImageDelivery } from "./deliver.ts";
import { admitCall, inputsOf, routeListener, type ServeDeps } from "./image-service.ts";
import { measuredSize } from "./respond.ts";

const FORMAT_BY_MIME: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "image/webp": "webp",
  "image/svg+xml": "svg",
  "image/gif": "gif",
};

export function createImageStreamService(
  resolver: ModelResolver,
  router: Router,
  prices: PriceList,
  delivery: ImageDelivery,
) {
  const deps = { resolver, router, prices, delivery };
  return {
    createImageStream: (request: CreateImageRequest, ctx: HandlerContext) =>
      streamImages(deps, request, ctx),
  };
}

/**
 * One image request as a stream, generation or (with `edit`) edit: admit, route until the
 * first event, pass the events on, price and settle. `defaultModel` as in `serveImages`.
 */
export async function* streamImages(
  { resolver, router, prices, delivery }: ServeDeps,
  given: CreateImageRequest,
  ctx: HandlerContext,
  edit?: EditInput,
  defaultModel?: string,
): AsyncGenerator<ImageStreamEvent> {
  if (given.responseFormat === "url") {
    throw invalidParam(
      "response_format",
      "Invalid 'response_format': a stream carries images as b64_json; send 'b64_json' or omit it.",
    );
  }
  // The RPC is the stream: over gRPC and Connect `stream` need not be sent. Events carry
  // bytes, so the upstream is asked for them (no URL to fetch back).
  const request: CreateImageRequest = { ...given, stream: true, responseFormat: "b64_json" };
  const { info, group, budget } = await admitCall(
    resolver,
    router,
    prices,
    request,
    ctx,
    edit,
    defaultModel,
  );
  const outcome = await router.routeStream(
    group,
    request,
    ctx.signal,
    routeListener(info),
    ctx.values.get(kBufferLease)?.allocate,
    ctx.values.get(kEventMemory)?.allocate,
    edit,
  );
  const { deployment, result: stream } = outcome;
  const effective = resolveDefaults(request, deployment.spec);
  const price = prices.lookup(deployment.provider, deployment.spec.model);
  const inputs = inputsOf(edit, deployment.spec);
  if (info) {
    info.model = outcome.group;
    info.deployment = deployment.id;
    info.provider = deployment.provider;
  }
  const created = () => Math.floor(Date.now() / 1000);
  let images = 0;
  let costUsd: number | undefined = 0;
  let size: string | undefined;
  let quality: string | undefined;
  let finished = false;
  const add = (usd: number | undefined) => {
    costUsd = costUsd === undefined || usd === undefined ? undefined : costUsd + usd;
  };
  try {
    let event: UpstreamEvent = stream.first;
    for (;;) {
      if (event.type === "partial") {
        info?.events.push({
          name: "imagegate.partial_image",
          time: Date.now(),
          attributes: { "imagegate.partial_image_index": event.index },
        });
        const partial = create(PartialImageEventSchema, {
          b64Json: event.image.bytes ?? new Uint8Array(),
          createdAt: created(),
          partialImageIndex: event.index,
        });
        const echo = echoes(event, event.image, effective.size, effective.quality);
        Object.assign(partial, echo);
        size ??= echo.size;
        quality ??= echo.quality;
        yield create(ImageStreamEventSchema, {
          event: { case: "partialImage", value: partial },
        });
      } else {
        const result = event.result;
        // Images the provider gave as URLs are fetched: a stream carries bytes.
        const delivered = await delivery.deliver(
          result.images,
          "b64_json",
          deployment.provider,
          ctx.signal,
        );
        const shareOf = priceShares(result, price, deployment.costPerImage, effective, inputs);
        for (const [i, image] of delivered.entries()) {
          const echo = echoes(result, image, effective.size, effective.quality);
          const completed = create(CompletedImageEventSchema, {
            b64Json: image.bytes ?? new Uint8Array(),
            createdAt: created(),
          });
          Object.assign(completed, echo);
          // Usage is the whole answer's: it goes with its first image.
          if (i === 0 && result.usage !== undefined) completed.usage = result.usage;
          const share = shareOf(i, delivered.length);
          if (share !== undefined) completed.imagegateCostUsd = Number(share.toFixed(10));
          add(share);
          images += 1;
          size ??= echo.size;
          quality ??= echo.quality;
          yield create(ImageStreamEventSchema, {
            event: { case: "completed", value: completed },
          });
        }
      }
      if (stream.rest === undefined) break;
      const next = await stream.rest.next();
      if (next.done) break;
      event = next.value;
    }
    finished = true;
  } finally {
    // Not finished: the upstream call is abandoned (its connection closed).
    if (!finished) await stream.rest?.return?.().catch(() => undefined);
    stream.close();
    // Images the upstream was drawing when the stream ended early were billed all the same.
    const outstanding = finished ? 0 : Math.max(0, effective.n - images);
    if (outstanding > 0 && stream.rest !== undefined) {
      add(
        costOf(
          {
            images: outstanding,
            size: size ?? (effective.size === "auto" ? undefined : effective.size),
            quality: quality ?? effective.quality,
            usage: undefined,
            inputs,
          },
          price,
          deployment.costPerImage,
        ),
      );
    }
    const charged = budget === undefined ? costUsd : await budget.settle(costUsd);
    if (info) {
      info.images = images;
      info.size = size;
      info.quality = quality;
      info.costUsd = charged;
      info.unpriced = costUsd === undefined;
    }
  }
}

/** The fields every event echoes: what the upstream said, else the image itself, else the request. */
function echoes(
  from: { size?: string; quality?: string; background?: string; outputFormat?: string },
  image: GeneratedImage,
  requestedSize: string,
  requestedQuality: string | undefined,
): { size?: string; quality?: string; background?: string; outputFormat?: string } {
  const out: { size?: string; quality?: string; background?: string; outputFormat?: string } = {};
  const size =
    from.size ?? measuredSize([image]) ?? (requestedSize === "auto" ? undefined : requestedSize);
  if (size !== undefined) out.size = size;
  const quality = from.quality ?? requestedQuality;
  if (quality !== undefined) out.quality = quality;
  if (from.background !== undefined) out.background = from.background;
  const format = from.outputFormat ?? FORMAT_BY_MIME[image.mimeType];
  if (format !== undefined) out.outputFormat = format;
  return out;
}

/**
 * Each image's share of what an answer cost: a streamed image (one per answer) its own
 * usage's price; an answer of several images, its price split evenly.
 */
function priceShares(
  result: GenerationResult,
  price: Parameters<typeof costOf>[1],
  perImage: number | undefined,
  effective: { size: string; quality: string | undefined },
  inputs: InputImages | undefined,
): (index: number, count: number) => number | undefined {
  const size =
    result.size ??
    measuredSize(result.images) ??
    (effective.size === "auto" ? undefined : effective.size);
  const total = costOf(
    {
      images: result.images.length,
      size,
      quality: result.quality ?? effective.quality,
      usage: result.usage,
      reportedUsd: result.costUsd,
      inputs,
    },
    price,
    perImage,
  );
  return (_index, count) => (total === undefined ? undefined : total / count);
}
