/**
 * Edits and variations on Bedrock, by family (docs/research/edits.md §5):
 * - Titan / Nova Canvas: a mask → `INPAINTING` with `maskImage` (converted to black = change,
 *   edit-images.ts); `mask_prompt` → `INPAINTING` with `maskPrompt`; neither → `IMAGE_VARIATION`
 *   of the input images guided by the prompt; the variations rpc → `IMAGE_VARIATION` without
 *   text. `strength` becomes `similarityStrength` (below).
 * - SD3 / SD3.5 Large: image-to-image (`mode`, `image`, `strength`).
 * Catalog checks already ran (edit-rules.ts); what only this mapping knows is a 400 here,
 * still before any upstream call.
 */
import type { EditInput, InputImageData } from "../../catalog/edit-rules.ts";
import type { ModelSpec } from "../../catalog/catalog.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { flattenTransparency, maskFromAlpha } from "../edit-images.ts";
import { planBedrockRequest } from "./plan.ts";
import type { BedrockEdit, BedrockPlan } from "./shapes.ts";

/** Titan / Nova's `similarityStrength` range (higher: closer to the input images). */
export const SIMILARITY = { min: 0.2, max: 1 } as const;

/**
 * `strength` (0 keeps the input, 1 departs from it most) → `similarityStrength`, linearly over
 * Bedrock's whole range, so every strength the client may send means something: 0 → 1.0,
 * 1 → 0.2.
 */
export function similarityFor(strength: number): number {
  const value = SIMILARITY.max - strength * (SIMILARITY.max - SIMILARITY.min);
  return Math.round(value * 1000) / 1000;
}

function base64(image: InputImageData): string {
  return Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength).toString(
    "base64",
  );
}

/**
 * InvokeModel's body limit (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html:
 * `body` up to 25,000,000 bytes), less room for the JSON around the base64 images.
 */
export const MAX_BASE64_BYTES = 25_000_000 - 64 * 1024;

/**
 * Our edit → the plan of every call; converts the mask and flattens transparent inputs.
 * Images that together, in base64, outgrow InvokeModel's body are a 400 naming `image`.
 */
export async function planBedrockEdit(
  req: CreateImageRequest,
  edit: EditInput,
  spec: ModelSpec,
): Promise<BedrockPlan> {
  const plan = await editPlan(req, edit, spec);
  const e = plan.edit!;
  const inputs =
    e.task === "IMAGE_VARIATION"
      ? e.images
      : e.task === "INPAINTING"
        ? [e.image, e.maskImage ?? ""]
        : [e.image];
  const total = inputs.reduce((sum, b64) => sum + b64.length, 0);
  if (total > MAX_BASE64_BYTES) {
    throw invalidParam(
      "image",
      `Invalid 'image': the images come to ${total} bytes in base64, past the ${MAX_BASE64_BYTES} a Bedrock request holds; send fewer or smaller images.`,
      "image_too_large",
    );
  }
  return plan;
}

async function editPlan(
  req: CreateImageRequest,
  edit: EditInput,
  spec: ModelSpec,
): Promise<BedrockPlan> {
  const plan = planBedrockRequest(req, spec);
  const first = edit.images[0]!;
  if (plan.style !== undefined)
    throw invalidParam(
      "style",
      `Unsupported parameter: 'style' is not taken by ${spec.model} edits.`,
    );
  if (plan.family === "sd3") {
    rejectSize(req, "image-to-image follows the input image's size");
    // Validation made sure the model requires strength; a variation never reaches SD3.
    plan.edit = { task: "image-to-image", image: base64(first), strength: edit.strength ?? 0 };
    delete plan.aspectRatio;
    return { ...plan, width: first.width, height: first.height };
  }
  if (plan.family !== "titan" && plan.family !== "nova") {
    throw invalidParam("model", `The model '${spec.model}' does not support image edits.`);
  }
  if (edit.kind === "variation") {
    plan.prompt = "";
    plan.edit = { task: "IMAGE_VARIATION", images: [base64(await flattenTransparency(first))] };
    return plan;
  }
  if (edit.mask !== undefined || edit.maskPrompt !== undefined) {
    if (edit.images.length > 1) {
      throw invalidParam(
        "image",
        `Invalid 'image': inpainting with ${spec.model} takes one image; ${edit.images.length} were sent.`,
      );
    }
    rejectSize(req, "an inpainted image keeps the input image's size");
    const inpaint: BedrockEdit = {
      task: "INPAINTING",
      image: base64(await flattenTransparency(first)),
    };
    if (edit.mask !== undefined)
      inpaint.maskImage = Buffer.from(await maskFromAlpha(edit.mask, "black")).toString("base64");
    else inpaint.maskPrompt = edit.maskPrompt;
    plan.edit = inpaint;
    return { ...plan, width: first.width, height: first.height };
  }
  const images = await Promise.all(edit.images.map(flattenTransparency));
  const variation: BedrockEdit = { task: "IMAGE_VARIATION", images: images.map(base64) };
  if (edit.strength !== undefined) variation.similarityStrength = similarityFor(edit.strength);
  plan.edit = variation;
  return plan;
}

function rejectSize(req: CreateImageRequest, why: string): void {
  if (req.size !== undefined && req.size !== "auto")
    throw invalidParam("size", `Unsupported parameter: 'size' is not taken here: ${why}.`);
}
