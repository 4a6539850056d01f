/**
 * A plan → the body of one InvokeModel call, in the family's shape.
 */
import type { AmazonImageRequest, BedrockPlan, Sd3Request, SdxlRequest } from "./shapes.ts";

/** SDXL: the negative prompt is a second text prompt with a negative weight. */
export function toSdxlRequest(
  plan: BedrockPlan,
  _count: number,
  seed: number | undefined,
): SdxlRequest {
  const body: SdxlRequest = {
    text_prompts: [{ text: plan.prompt, weight: 1 }],
    width: plan.width,
    height: plan.height,
    samples: 1,
  };
  if (plan.negativePrompt !== undefined)
    body.text_prompts.push({ text: plan.negativePrompt, weight: -1 });
  if (seed !== undefined) body.seed = seed;
  if (plan.style !== undefined) body.style_preset = plan.style;
  return body;
}

export function toSd3Request(
  plan: BedrockPlan,
  _count: number,
  seed: number | undefined,
): Sd3Request {
  const body: Sd3Request = { prompt: plan.prompt, aspect_ratio: plan.aspectRatio ?? "1:1" };
  if (plan.negativePrompt !== undefined) body.negative_prompt = plan.negativePrompt;
  if (seed !== undefined) body.seed = seed;
  if (plan.outputFormat !== undefined) body.output_format = plan.outputFormat;
  return body;
}

/** Titan and Nova share the TEXT_IMAGE shape; only Nova has `style` (the catalog admits it only there). */
export function toAmazonImageRequest(
  plan: BedrockPlan,
  count: number,
  seed: number | undefined,
): AmazonImageRequest {
  const body: AmazonImageRequest = {
    taskType: "TEXT_IMAGE",
    textToImageParams: { text: plan.prompt },
    imageGenerationConfig: {
      numberOfImages: count,
      width: plan.width,
      height: plan.height,
      quality: plan.quality ?? "standard",
    },
  };
  if (plan.negativePrompt !== undefined) body.textToImageParams.negativeText = plan.negativePrompt;
  if (plan.style !== undefined) body.textToImageParams.style = plan.style;
  if (seed !== undefined) body.imageGenerationConfig.seed = seed;
  return body;
}
