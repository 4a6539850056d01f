/**
 * ImageService.CreateImage: resolve the model, validate against the catalog, route to a
 * provider, shape the answer. The same method serves gRPC, gRPC-Web, Connect and REST.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { checkModelAllowed, kKey } from "../auth/interceptor.ts";
import { resolveDefaults } from "../catalog/validate.ts";
import type {
  CreateImageRequest,
  ImageService,
  ImagesResponse,
} from "../gen/imagegate/v1/images_pb.js";
import { costOf, type PriceList } from "../pricing/pricing.ts";
import type { ModelResolver } from "../router/resolve.ts";
import type { Router } from "../router/router.ts";
import { kBufferLease, kCallInfo } from "../server/call-info.ts";
import type { ImageDelivery } from "./deliver.ts";
import { measuredSize, toImagesResponse } from "./respond.ts";

export function createImageService(
  resolver: ModelResolver,
  router: Router,
  prices: PriceList,
  delivery: ImageDelivery,
): Partial<ServiceImpl<typeof ImageService>> {
  return {
    async createImage(request: CreateImageRequest, ctx: HandlerContext): Promise<ImagesResponse> {
      const info = ctx.values.get(kCallInfo);
      const group = resolver.resolve(request.model);
      if (info) info.model = group.name;
      checkModelAllowed(ctx.values.get(kKey), group.name);
      const outcome = await router.route(
        group,
        request,
        ctx.signal,
        {
          onAttempt(deployment) {
            if (!info) return;
            info.attempts += 1;
            info.deployment = deployment.id;
            info.provider = deployment.provider;
          },
          onRetry(deployment, error, waitMs) {
            info?.events.push({
              name: "imagegate.retry",
              time: Date.now(),
              attributes: {
                "imagegate.deployment": deployment.id,
                "error.type": error.code ?? error.kind,
                "imagegate.wait_ms": waitMs,
              },
            });
          },
          onFallback(from, to, reason) {
            info?.events.push({
              name: "imagegate.fallback",
              time: Date.now(),
              attributes: {
                "imagegate.from": from,
                "imagegate.to": to,
                "imagegate.reason": reason,
              },
            });
          },
        },
        ctx.values.get(kBufferLease)?.allocate,
      );
      const { result, deployment } = outcome;
      const effective = resolveDefaults(request, deployment.spec);
      // The size produced: the upstream's echo, else what the image itself says, else the request's.
      const size =
        result.size ??
        measuredSize(result.images) ??
        (effective.size === "auto" ? undefined : effective.size);
      const quality = result.quality ?? effective.quality;
      if (info) {
        info.model = outcome.group;
        info.deployment = deployment.id;
        info.provider = deployment.provider;
        info.images = result.images.length;
        info.size = size;
        info.quality = quality;
        info.costUsd = costOf(
          {
            images: result.images.length,
            size,
            quality,
            usage: result.usage,
            reportedUsd: result.costUsd,
          },
          prices.lookup(deployment.provider, deployment.spec.model),
          deployment.costPerImage,
        );
        info.unpriced = info.costUsd === undefined;
      }
      const images = await delivery.deliver(
        result.images,
        effective.responseFormat,
        deployment.provider,
        ctx.signal,
      );
      return toImagesResponse(
        { ...result, images },
        { responseFormat: effective.responseFormat, size },
      );
    },
  };
}
