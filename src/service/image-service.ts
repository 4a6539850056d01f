/**
 * ImageService.CreateImage: resolve the model, validate against the catalog, route to a
 * provider, shape the answer; edits and variations take the same path (`serveImages`). The
 * same methods serve gRPC, gRPC-Web, Connect and REST.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { ATTR_ERROR_TYPE } from "@opentelemetry/semantic-conventions";
import { checkModelAllowed, kBudget, kKey } from "../auth/interceptor.ts";
import type { Deployment } from "../config/deployment.ts";
import type { ModelSpec } from "../catalog/catalog.ts";
import type { EditInput } from "../catalog/edit-rules.ts";
import { GatewayError } from "../errors/errors.ts";
import { resolveDefaults } from "../catalog/validate.ts";
import { parseSize } from "../catalog/size.ts";
import type {
  CreateImageRequest,
  ImageService,
  ImagesResponse,
} from "../gen/imagegate/v1/images_pb.js";
import { costOf, type InputImages, maxCostOf, type PriceList } from "../pricing/pricing.ts";
import type { ModelGroup, ModelResolver } from "../router/resolve.ts";
import type { RouteListener, Router } from "../router/router.ts";
import { type CallInfo, kBufferLease, kCallInfo } from "../call/call-info.ts";
import type { ImageDelivery } from "./deliver.ts";
import { measuredSize, toImagesResponse } from "./respond.ts";

export function createImageService(
  resolver: ModelResolver,
  router: Router,
  prices: PriceList,
  delivery: ImageDelivery,
): Partial<ServiceImpl<typeof ImageService>> {
  const deps = { resolver, router, prices, delivery };
  return {
    createImage: (request: CreateImageRequest, ctx: HandlerContext) =>
      serveImages(deps, request, ctx),
  };
}

export interface ServeDeps {
  resolver: ModelResolver;
  router: Router;
  prices: PriceList;
  delivery: ImageDelivery;
}

/**
 * One image request, generation or (with `edit`) edit or variation: admit (model, key,
 * budget), route, price, settle, deliver. `request` carries the fields every operation
 * shares; `defaultModel` replaces the contract's default when the client named none (edits
 * default to dall-e-2, as OpenAI's API does).
 */
export async function serveImages(
  { resolver, router, prices, delivery }: ServeDeps,
  request: CreateImageRequest,
  ctx: HandlerContext,
  edit?: EditInput,
  defaultModel?: string,
): Promise<ImagesResponse> {
  const { info, group, budget } = await admitCall(
    resolver,
    router,
    prices,
    request,
    ctx,
    edit,
    defaultModel,
  );
  const outcome = await router.route(
    group,
    request,
    ctx.signal,
    routeListener(info),
    ctx.values.get(kBufferLease)?.allocate,
    edit,
  );
  const { result, deployment } = outcome;
  const effective = resolveDefaults(request, deployment.spec);
  // The size produced: the upstream's echo, else what the image itself says, else the request's.
  const size =
    result.size ??
    measuredSize(result.images) ??
    (effective.size === "auto" ? undefined : effective.size);
  const quality = result.quality ?? effective.quality;
  const costUsd = costOf(
    {
      images: result.images.length,
      size,
      quality,
      usage: result.usage,
      reportedUsd: result.costUsd,
      inputs: inputsOf(edit, deployment.spec),
    },
    prices.lookup(deployment.provider, deployment.spec.model),
    deployment.costPerImage,
  );
  // The upstream has billed: spend is recorded now, whatever happens to the delivery.
  const charged = budget === undefined ? costUsd : await budget.settle(costUsd);
  if (info) {
    info.model = outcome.group;
    info.deployment = deployment.id;
    info.provider = deployment.provider;
    info.images = result.images.length;
    info.size = size;
    info.quality = quality;
    info.costUsd = charged;
    info.unpriced = costUsd === undefined;
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
}

/** Reports the router's attempts, retries and fallbacks on the call (headers, span events). */
export function routeListener(info: CallInfo | undefined): RouteListener {
  return {
    onAttempt(deployment) {
      if (!info) return;
      info.attempts += 1;
      info.attemptLog ??= [];
      info.attemptLog.push({ deployment: deployment.id });
      info.deployment = deployment.id;
      info.provider = deployment.provider;
    },
    onAttemptFailed(_deployment, error) {
      // The attempt onAttempt logged last is the one that failed.
      const last = info?.attemptLog?.at(-1);
      if (last !== undefined) last.error = error.code ?? error.kind;
    },
    onRetry(deployment, error, waitMs) {
      info?.events.push({
        name: "imagegate.retry",
        time: Date.now(),
        attributes: {
          "imagegate.deployment": deployment.id,
          [ATTR_ERROR_TYPE]: error.code ?? error.kind,
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
  };
}

/**
 * An edit's input images as their price sees them: the images, and the `input_fidelity`
 * sent or the model's default (none: the priciest is assumed). Variations bill none.
 */
export function inputsOf(edit: EditInput | undefined, spec: ModelSpec): InputImages | undefined {
  if (edit?.kind !== "edit") return undefined;
  return {
    images: edit.images,
    fidelity: edit.inputFidelity ?? spec.edits?.input_fidelity?.default,
  };
}

/**
 * The most a request may cost wherever it may be served (its group's deployments and its
 * fallbacks' that accept it): what a budgeted key holds before the call. A deployment
 * without a price makes the request unpriceable: the 400, since a budget cannot hold it.
 */
export function mostItMayCost(
  deployments: readonly Deployment[],
  group: ModelGroup,
  request: CreateImageRequest,
  prices: PriceList,
  edit?: EditInput,
): number {
  const promptBytes = Buffer.byteLength(request.prompt ?? "", "utf8");
  let most = 0;
  for (const d of deployments) {
    const effective = resolveDefaults(request, d.spec);
    const usd = maxCostOf(
      {
        images: effective.n,
        size: heldSize(effective.size, edit),
        quality: effective.quality,
        promptBytes,
        calls: Math.ceil(effective.n / d.spec.upstream_max_n),
        inputs: inputsOf(edit, d.spec),
      },
      prices.lookup(d.provider, d.spec.model),
      d.costPerImage,
    );
    if (usd === undefined) {
      const where = d.group === group.name ? "" : ` (a fallback of '${group.name}')`;
      throw new GatewayError(
        "invalid_request",
        `The model '${d.group}'${where} has no known price (deployment '${d.id}', ${d.provider}/${d.model}), and this key has a budget, which cannot hold an unpriced request. The gateway's operator can give it one with model_info.output_cost_per_image.`,
        { param: "model", code: "model_not_priced" },
      );
    }
    most = Math.max(most, usd);
  }
  return most;
}

/**
 * The size a hold prices: an edit may keep its input image's size (Titan and Nova
 * inpainting, SD3 and Recraft image-to-image, Imagen editing), so the larger of the asked
 * size and the first input's, by pixels, lest a large input outgrow its hold.
 */
export function heldSize(size: string, edit: EditInput | undefined): string {
  const input = edit?.images[0];
  const asked = parseSize(size);
  if (input === undefined || asked === undefined) return size;
  return input.width * input.height > asked.width * asked.height
    ? `${input.width}x${input.height}`
    : size;
}

/**
 * What every image call does before routing: resolve the model, check the key may use it,
 * and for a key with a budget hold the most the request may cost on any deployment it may
 * reach (released by the auth interceptor unless settled). Unary and streaming calls, and
 * edits and variations (`edit`; `defaultModel` when the client named none), share it.
 */
export async function admitCall(
  resolver: ModelResolver,
  router: Router,
  prices: PriceList,
  request: CreateImageRequest,
  ctx: HandlerContext,
  edit?: EditInput,
  defaultModel?: string,
) {
  const info = ctx.values.get(kCallInfo);
  const group = resolver.resolve(request.model || defaultModel);
  if (info) info.model = group.name;
  checkModelAllowed(ctx.values.get(kKey), group.name, group.alias);
  const budget = ctx.values.get(kBudget);
  if (budget?.limited)
    await budget.reserve(
      mostItMayCost(router.reachable(group, request, edit), group, request, prices, edit),
    );
  return { info, group, budget };
}
