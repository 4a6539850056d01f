/**
 * An edit plan → the body of one InvokeModel call: Titan / Nova `INPAINTING` or
 * `IMAGE_VARIATION`, SD3 image-to-image (the shapes and their docs: shapes.ts).
 */
import type {
  AmazonInpaintingRequest,
  AmazonVariationRequest,
  BedrockPlan,
  Sd3ImageToImageRequest,
} from "./shapes.ts";

/** Titan / Nova: the body of one call of an edit plan. */
export function toAmazonEditRequest(
  plan: BedrockPlan,
  count: number,
  seed: number | undefined,
): AmazonInpaintingRequest | AmazonVariationRequest {
  const edit = plan.edit!;
  const quality = plan.quality ?? "standard";
  const text = plan.prompt === "" ? {} : { text: plan.prompt };
  const negativeText =
    plan.negativePrompt === undefined ? {} : { negativeText: plan.negativePrompt };
  if (edit.task === "INPAINTING") {
    const body: AmazonInpaintingRequest = {
      taskType: "INPAINTING",
      inPaintingParams: { image: edit.image, ...text, ...negativeText },
      imageGenerationConfig: { numberOfImages: count, quality },
    };
    if (edit.maskImage !== undefined) body.inPaintingParams.maskImage = edit.maskImage;
    if (edit.maskPrompt !== undefined) body.inPaintingParams.maskPrompt = edit.maskPrompt;
    if (seed !== undefined) body.imageGenerationConfig.seed = seed;
    return body;
  }
  if (edit.task !== "IMAGE_VARIATION") throw new Error(`no Titan/Nova body for ${edit.task}`);
  const body: AmazonVariationRequest = {
    taskType: "IMAGE_VARIATION",
    imageVariationParams: { images: edit.images, ...text, ...negativeText },
    imageGenerationConfig: {
      numberOfImages: count,
      width: plan.width,
      height: plan.height,
      quality,
    },
  };
  if (edit.similarityStrength !== undefined)
    body.imageVariationParams.similarityStrength = edit.similarityStrength;
  if (seed !== undefined) body.imageGenerationConfig.seed = seed;
  return body;
}

/** SD3 / SD3.5 Large: the body of one image-to-image call. */
export function toSd3ImageToImageRequest(
  plan: BedrockPlan,
  _count: number,
  seed: number | undefined,
): Sd3ImageToImageRequest {
  const edit = plan.edit!;
  if (edit.task !== "image-to-image") throw new Error(`no SD3 body for ${edit.task}`);
  const body: Sd3ImageToImageRequest = {
    prompt: plan.prompt,
    mode: "image-to-image",
    image: edit.image,
    strength: edit.strength,
  };
  if (plan.negativePrompt !== undefined) body.negative_prompt = plan.negativePrompt;
  if (seed !== undefined) body.seed = seed;
  if (plan.outputFormat !== undefined) body.output_format = plan.outputFormat;
  return body;
}
