/**
 * The four request/response shapes of Bedrock's image models, typed at the adapter's edge:
 * Stability SDXL, Stability SD3 / Stable Image, and Amazon Titan Image Generator / Nova Canvas
 * (one shape).
 */
import type { Family } from "../../catalog/catalog.ts";

/** Where a 200 answer holds its images: SDXL `artifacts[].base64`, SD3/Titan/Nova `images[]`. */
export const BEDROCK_IMAGE_KEYS: readonly string[] = ["base64", "images"];

/** https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-1-0-text-image.html */
export interface SdxlRequest {
  text_prompts: Array<{ text: string; weight: number }>;
  width: number;
  height: number;
  samples: 1;
  seed?: number;
  style_preset?: string;
}

export interface SdxlResponse {
  result?: unknown;
  artifacts?: Array<{ seed?: unknown; base64?: unknown; finishReason?: unknown }>;
}

/** https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-text-image.html */
export interface Sd3Request {
  prompt: string;
  aspect_ratio: string;
  negative_prompt?: string;
  seed?: number;
  output_format?: string;
}

export interface Sd3Response {
  seeds?: unknown;
  finish_reasons?: unknown;
  images?: unknown;
}

/**
 * Titan (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html)
 * and Nova Canvas (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html).
 */
export interface AmazonImageRequest {
  taskType: "TEXT_IMAGE";
  textToImageParams: { text: string; negativeText?: string; style?: string };
  imageGenerationConfig: {
    numberOfImages: number;
    width: number;
    height: number;
    quality: string;
    seed?: number;
  };
}

export interface AmazonImageResponse {
  images?: unknown;
  error?: unknown;
}

/**
 * Titan / Nova edit tasks: INPAINTING with a mask image or a mask prompt, IMAGE_VARIATION from
 * 1-5 images (Titan: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html;
 * Nova: https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html). An
 * inpainted image keeps the input's size, so its config has no width or height.
 */
export interface AmazonInpaintingRequest {
  taskType: "INPAINTING";
  inPaintingParams: {
    image: string;
    text?: string;
    negativeText?: string;
    maskImage?: string;
    maskPrompt?: string;
  };
  imageGenerationConfig: { numberOfImages: number; quality: string; seed?: number };
}

export interface AmazonVariationRequest {
  taskType: "IMAGE_VARIATION";
  imageVariationParams: {
    images: string[];
    text?: string;
    negativeText?: string;
    similarityStrength?: number;
  };
  imageGenerationConfig: AmazonImageRequest["imageGenerationConfig"];
}

/**
 * SD3 / SD3.5 Large image-to-image
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html):
 * `aspect_ratio` is for text-to-image only; the output follows the input image.
 */
export interface Sd3ImageToImageRequest {
  prompt: string;
  mode: "image-to-image";
  image: string;
  strength: number;
  negative_prompt?: string;
  seed?: number;
  output_format?: string;
}

export type BedrockRequestBody =
  | SdxlRequest
  | Sd3Request
  | AmazonImageRequest
  | AmazonInpaintingRequest
  | AmazonVariationRequest
  | Sd3ImageToImageRequest;

/** An edit's inputs as Bedrock takes them: base64 images, the mask already converted. */
export type BedrockEdit =
  | { task: "INPAINTING"; image: string; maskImage?: string; maskPrompt?: string }
  | { task: "IMAGE_VARIATION"; images: string[]; similarityStrength?: number }
  | { task: "image-to-image"; image: string; strength: number };

export type BedrockFamily = Extract<Family, "sdxl" | "sd3" | "titan" | "nova">;

/** What every upstream call of one request shares; only the count and the seed vary by call. */
export interface BedrockPlan {
  family: BedrockFamily;
  prompt: string;
  negativePrompt?: string;
  width: number;
  height: number;
  /** SD3 only: what is sent; width/height are what Stability renders for it. */
  aspectRatio?: string;
  /** Titan/Nova only: standard | premium. */
  quality?: string;
  /** SDXL style_preset or Nova style. */
  style?: string;
  /** SD3 only: png | jpeg, when the client chose one. */
  outputFormat?: string;
  /** The client's seed; call i of a fan-out uses seed + i. */
  seed?: number;
  /** The model's seed maximum (catalog), so seed + i wraps within range. */
  seedMax: number;
  /** An edit or variation: the task and its inputs (edit.ts); absent for a generation. */
  edit?: BedrockEdit;
}
