/**
 * The upstream JSON shapes Google AI Studio and Vertex AI share, typed at the adapter's edge.
 */
import type { GenerationResult } from "../types.ts";
import type { ImageTier } from "./sizes.ts";

/** Where each answer holds its base64 images: read as bytes straight from the body (`image-json.ts`). */
export const IMAGEN_IMAGE_KEYS: readonly string[] = ["bytesBase64Encoded"];

export const GEMINI_IMAGE_KEYS: readonly string[] = ["data"]; // `inlineData.data`

/** Imagen `:predict` body. */
export interface ImagenPredictRequest {
  instances: [{ prompt: string }];
  parameters: {
    sampleCount: number;
    aspectRatio: string;
    sampleImageSize?: ImageTier;
    negativePrompt?: string;
    seed?: number;
    addWatermark?: boolean;
    includeRaiReason: boolean;
  };
}

/**
 * Imagen editing (`imagen-3.0-capability-001` `:predict`,
 * https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit): the
 * image to edit as a RAW reference, a user mask as a MASK reference.
 */
export interface ImagenReferenceImage {
  referenceType: "REFERENCE_TYPE_RAW" | "REFERENCE_TYPE_MASK";
  referenceId: number;
  referenceImage: { bytesBase64Encoded: string };
  maskImageConfig?: { maskMode: "MASK_MODE_USER_PROVIDED" };
}

export interface ImagenEditRequest {
  instances: [{ prompt: string; referenceImages: ImagenReferenceImage[] }];
  parameters: {
    editMode: "EDIT_MODE_INPAINT_INSERTION" | "EDIT_MODE_DEFAULT";
    sampleCount: number;
    negativePrompt?: string;
    seed?: number;
    addWatermark?: boolean;
    includeRaiReason: boolean;
  };
}

export interface ImagenPrediction {
  bytesBase64Encoded?: unknown;
  mimeType?: unknown;
  prompt?: unknown;
  raiFilteredReason?: unknown;
  contentType?: unknown;
}

/** Gemini `:generateContent` body asking for an image. */
export interface GeminiGenerateContentRequest {
  /** One user turn: the prompt, then an edit's input images as inline parts. */
  contents: [
    {
      role: "user";
      parts: [{ text: string }, ...{ inlineData: { mimeType: string; data: string } }[]];
    },
  ];
  generationConfig: {
    responseModalities: ["TEXT", "IMAGE"];
    imageConfig: { aspectRatio: string; imageSize?: ImageTier };
  };
}

export interface GeminiPart {
  text?: unknown;
  inlineData?: { mimeType?: unknown; data?: unknown };
  thought?: unknown;
}

export interface ModalityCount {
  modality?: unknown;
  tokenCount?: unknown;
}

export interface GeminiResponse {
  candidates?: Array<{
    content?: { parts?: unknown };
    finishReason?: unknown;
    finishMessage?: unknown;
  }>;
  promptFeedback?: { blockReason?: unknown; blockReasonMessage?: unknown };
  usageMetadata?: {
    promptTokenCount?: unknown;
    candidatesTokenCount?: unknown;
    promptTokensDetails?: unknown;
    candidatesTokensDetails?: unknown;
  };
}

export interface GoogleErrorBody {
  error?: { code?: unknown; message?: unknown; status?: unknown; details?: unknown };
}

/** One upstream call's answer, with the safety system's reason when it withheld images. */
export interface CallOutcome {
  result: GenerationResult;
  refusal?: string;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
