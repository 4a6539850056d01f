/**
 * Image edits and variations as the router and adapters see them (`EditInput`: the input
 * images read and measured, the edit-only fields), and the per-model input checks driven
 * by the catalog's `edits:` / `variations:` sections. Every check is a 400 naming `image`,
 * `mask` or the field, before any upstream call.
 */
import { invalidParam } from "../errors/errors.ts";
import type { InputFormat, ModelSpec } from "./catalog.ts";

/** An input image, read from the request and measured (`service/input-images.ts`). */
export interface InputImageData {
  bytes: Uint8Array;
  /** What the bytes are, by their magic numbers (not by what the client declared). */
  format: InputFormat;
  mimeType: string;
  width: number;
  height: number;
}

/** What an edit or variation carries beyond a generation's fields. */
export interface EditInput {
  kind: "edit" | "variation";
  /** The input images (a variation has one); the mask applies to the first. */
  images: InputImageData[];
  mask?: InputImageData;
  /** `high` or `low`, where the model takes it. */
  inputFidelity?: string;
  /** 0-1 (image-to-image), where the model takes it. */
  strength?: number;
  /** Text naming what to edit, instead of a mask (Titan, Nova Canvas). */
  maskPrompt?: string;
}

const LIMIT_WORDS = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MB` : `${bytes} bytes`;

/** Throws the 400 `spec` gives `edit`; `model` is the name the messages use. */
export function validateEdit(edit: EditInput, spec: ModelSpec, model: string): void {
  if (edit.kind === "variation") {
    validateVariation(edit, spec, model);
    return;
  }
  const rules = spec.edits;
  if (rules === undefined) {
    throw invalidParam(
      "model",
      `The model '${model}' does not support image edits.`,
      "model_not_supported",
    );
  }
  if (edit.images.length > rules.max_images) {
    throw invalidParam(
      "image",
      `Invalid 'image': ${edit.images.length} images were sent; ${model} takes at most ${rules.max_images}.`,
    );
  }
  edit.images.forEach((image, i) => {
    checkImage("image", image, rules.formats, rules.max_image_bytes, rules.square, model, i);
    if (rules.dimensions !== undefined) checkDimensions(image, rules.dimensions, model, i);
  });
  if (edit.mask !== undefined) {
    if (rules.mask === undefined) {
      throw invalidParam("mask", `Unsupported parameter: 'mask' is not supported with ${model}.`);
    }
    checkImage("mask", edit.mask, rules.mask.formats, rules.mask.max_bytes, false, model);
  }
  if (edit.maskPrompt !== undefined) {
    if (!rules.mask_prompt) {
      throw invalidParam(
        "mask_prompt",
        `Unsupported parameter: 'mask_prompt' is not supported with ${model}.`,
      );
    }
    if (edit.mask !== undefined) {
      throw invalidParam("mask_prompt", "Send either 'mask' or 'mask_prompt', not both.");
    }
  }
  if (edit.strength === undefined && rules.strength_required) {
    throw invalidParam(
      "strength",
      `Missing required parameter: 'strength'. ${model} edits image to image and needs it (0 keeps the image, 1 ignores it).`,
    );
  }
  if (edit.strength !== undefined) {
    if (!rules.strength) {
      throw invalidParam(
        "strength",
        `Unsupported parameter: 'strength' is not supported with ${model}.`,
      );
    }
    if (!(edit.strength >= 0 && edit.strength <= 1)) {
      throw invalidParam(
        "strength",
        `Invalid value for 'strength': ${edit.strength}. It must be a number from 0 to 1.`,
      );
    }
  }
  if (edit.inputFidelity !== undefined) {
    const fidelity = rules.input_fidelity;
    if (fidelity === undefined) {
      throw invalidParam(
        "input_fidelity",
        `Unsupported parameter: 'input_fidelity' is not supported with ${model}.`,
      );
    }
    if (!fidelity.values.includes(edit.inputFidelity)) {
      throw invalidParam(
        "input_fidelity",
        `Invalid value: '${edit.inputFidelity}'. Supported values for ${model} are: ${fidelity.values.map((v) => `'${v}'`).join(", ")}.`,
      );
    }
  }
}

function validateVariation(edit: EditInput, spec: ModelSpec, model: string): void {
  const rules = spec.variations;
  if (rules === undefined) {
    throw invalidParam(
      "model",
      `The model '${model}' does not support image variations.`,
      "model_not_supported",
    );
  }
  const image = edit.images[0];
  if (image !== undefined) {
    checkImage("image", image, rules.formats, rules.max_image_bytes, rules.square, model);
    if (rules.dimensions !== undefined) checkDimensions(image, rules.dimensions, model);
  }
}

/** The input's pixel size against the model's bounds: a 400 naming `image` that says them. */
function checkDimensions(
  image: InputImageData,
  bounds: NonNullable<ModelSpec["variations"]>["dimensions"] & object,
  model: string,
  index?: number,
): void {
  const { width, height } = image;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const problem =
    bounds.min_side !== undefined && short < bounds.min_side
      ? `each side must be at least ${bounds.min_side} pixels`
      : bounds.max_side !== undefined && long > bounds.max_side
        ? `each side must be at most ${bounds.max_side} pixels`
        : bounds.max_pixels !== undefined && width * height > bounds.max_pixels
          ? `it must have at most ${bounds.max_pixels} pixels`
          : undefined;
  if (problem === undefined) return;
  const which = index === undefined || index === 0 ? "'image'" : `'image' (image ${index + 1})`;
  throw invalidParam(
    "image",
    `Invalid ${which}: the image is ${width}x${height}; for ${model} ${problem}.`,
    "invalid_image",
  );
}

function checkImage(
  param: "image" | "mask",
  image: InputImageData,
  formats: readonly InputFormat[],
  maxBytes: number,
  square: boolean,
  model: string,
  index?: number,
): void {
  const which =
    index === undefined || index === 0 ? `'${param}'` : `'${param}' (image ${index + 1})`;
  if (!formats.includes(image.format)) {
    throw invalidParam(
      param,
      `Invalid ${which}: a ${image.format.toUpperCase()} image was sent; ${model} takes ${formats.map((f) => f.toUpperCase()).join(", ")}.`,
      "invalid_image_format",
    );
  }
  if (image.bytes.byteLength > maxBytes) {
    throw invalidParam(
      param,
      `Invalid ${which}: the image is ${image.bytes.byteLength} bytes; ${model} takes images under ${LIMIT_WORDS(maxBytes + 1)}.`,
      "image_too_large",
    );
  }
  if (square && image.width !== image.height) {
    throw invalidParam(
      param,
      `Invalid ${which}: the image is ${image.width}x${image.height}; ${model} takes square images only.`,
      "invalid_image",
    );
  }
}
