/**
 * ImageService.EditImage, EditImageStream and CreateImageVariation: the input images are
 * read and measured (`input-images.ts`), the mask checked against the first image, then the
 * request takes the same path as a generation (`serveImages`, or `streamImages` for a
 * stream): resolve, key, budget, route (only to deployments whose catalog entry can edit,
 * with the per-model input checks), price, deliver. The same methods serve gRPC, gRPC-Web,
 * Connect and REST (JSON and multipart).
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { EditInput, InputImageData } from "../catalog/edit-rules.ts";
import { invalidParam } from "../errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
  type CreateImageVariationRequest,
  type EditImageRequest,
  type ImageService,
  type ImageStreamEvent,
  type ImagesResponse,
} from "../gen/imagegate/v1/images_pb.js";
import type { ImageDownloader } from "../store/download.ts";
import { type ServeDeps, serveImages } from "./image-service.ts";
import { streamImages } from "./image-stream.ts";
import { readInputImage } from "./input-images.ts";

/** OpenAI's default model for edits and variations. */
export const DEFAULT_EDIT_MODEL = "openai/dall-e-2";

/** The most input images any request may carry (OpenAI's limit; models may take fewer). */
export const MAX_INPUT_IMAGES = 16;

export function createEditService(
  deps: ServeDeps,
  downloader: ImageDownloader,
): Partial<ServiceImpl<typeof ImageService>> {
  return {
    async editImage(req: EditImageRequest, ctx: HandlerContext): Promise<ImagesResponse> {
      const { request, edit } = await editInputs(req, downloader, ctx.signal);
      return serveImages(deps, request, ctx, edit, DEFAULT_EDIT_MODEL);
    },
    async *editImageStream(
      req: EditImageRequest,
      ctx: HandlerContext,
    ): AsyncGenerator<ImageStreamEvent> {
      const { request, edit } = await editInputs(req, downloader, ctx.signal);
      yield* streamImages(deps, request, ctx, edit, DEFAULT_EDIT_MODEL);
    },
    async createImageVariation(
      req: CreateImageVariationRequest,
      ctx: HandlerContext,
    ): Promise<ImagesResponse> {
      if (req.image === undefined)
        throw invalidParam("image", "Missing required parameter: 'image'.");
      const image = await readInputImage(req.image, "image", downloader, ctx.signal);
      const request = create(CreateImageRequestSchema, {
        model: req.model,
        n: req.n,
        size: req.size,
        responseFormat: req.responseFormat,
        user: req.user,
      });
      return serveImages(
        deps,
        request,
        ctx,
        { kind: "variation", images: [image] },
        DEFAULT_EDIT_MODEL,
      );
    },
  };
}

/** An edit request as the shared fields (checked by the catalog as a generation's) and the edit's own. */
export async function editInputs(
  req: EditImageRequest,
  downloader: ImageDownloader,
  signal: AbortSignal,
): Promise<{ request: CreateImageRequest; edit: EditInput }> {
  if (req.images.length === 0) throw invalidParam("image", "Missing required parameter: 'image'.");
  if (req.images.length > MAX_INPUT_IMAGES) {
    throw invalidParam(
      "image",
      `Invalid 'image': ${req.images.length} images were sent; at most ${MAX_INPUT_IMAGES} are taken.`,
    );
  }
  if (req.prompt === undefined)
    throw invalidParam("prompt", "Missing required parameter: 'prompt'.");
  const images: InputImageData[] = [];
  for (const [i, image] of req.images.entries())
    images.push(await readInputImage(image, "image", downloader, signal, i));
  let mask: InputImageData | undefined;
  if (req.mask !== undefined) {
    mask = await readInputImage(req.mask, "mask", downloader, signal);
    const first = images[0]!;
    if (mask.width !== first.width || mask.height !== first.height) {
      throw invalidParam(
        "mask",
        `Invalid 'mask': the mask is ${mask.width}x${mask.height} but the image is ${first.width}x${first.height}; they must be the same size.`,
        "invalid_mask",
      );
    }
  }
  const request = create(CreateImageRequestSchema, {
    prompt: req.prompt,
    model: req.model,
    n: req.n,
    size: req.size,
    quality: req.quality,
    responseFormat: req.responseFormat,
    background: req.background,
    outputFormat: req.outputFormat,
    outputCompression: req.outputCompression,
    user: req.user,
    stream: req.stream,
    partialImages: req.partialImages,
    safetyIdentifier: req.safetyIdentifier,
    negativePrompt: req.negativePrompt,
    seed: req.seed,
    style: req.style,
  });
  const edit: EditInput = { kind: "edit", images };
  if (mask !== undefined) edit.mask = mask;
  if (req.inputFidelity !== undefined) edit.inputFidelity = req.inputFidelity;
  // A float in protobuf: 0.6 arrives as 0.6000000238418579 over binary gRPC / Connect; its
  // seven significant digits are all it holds, and what upstreams are sent.
  if (req.strength !== undefined) edit.strength = Number(req.strength.toPrecision(7));
  if (req.maskPrompt !== undefined) edit.maskPrompt = req.maskPrompt;
  return { request, edit };
}
