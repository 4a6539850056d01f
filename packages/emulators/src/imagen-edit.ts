/**
 * Imagen editing on Vertex AI (`imagen-3.0-capability-001` `:predict`), checked as the API
 * reference documents it
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit):
 * one instance with an optional prompt and `referenceImages` (one REFERENCE_TYPE_RAW image to
 * edit; at most one REFERENCE_TYPE_MASK, whose `maskImageConfig.maskMode` says where the mask
 * comes from, with an image only for MASK_MODE_USER_PROVIDED, of the raw image's size);
 * `parameters.editMode` one of Google's EditMode values, the inpainting and outpainting modes
 * needing a mask. Images are base64 PNG or JPEG; the answer is Imagen's, at the raw image's
 * size.
 */
import { type ImagenRules, invalidArgument, requireObject, unknownName } from "./google-images.ts";
import { decodeBase64, type InputInfo, inspectImage } from "./input-images.ts";
import { renderPng } from "./png.ts";

/** https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/Shared.Types/EditMode */
const EDIT_MODES = [
  "EDIT_MODE_DEFAULT",
  "EDIT_MODE_INPAINT_REMOVAL",
  "EDIT_MODE_INPAINT_INSERTION",
  "EDIT_MODE_OUTPAINT",
  "EDIT_MODE_CONTROLLED_EDITING",
  "EDIT_MODE_STYLE",
  "EDIT_MODE_BGSWAP",
  "EDIT_MODE_PRODUCT_IMAGE",
];
const MASK_MODES = [
  "MASK_MODE_DEFAULT",
  "MASK_MODE_USER_PROVIDED",
  "MASK_MODE_BACKGROUND",
  "MASK_MODE_FOREGROUND",
  "MASK_MODE_SEMANTIC",
];
/** Modes that edit inside or outside a mask, so need one. */
const MASKED_MODES = [
  "EDIT_MODE_INPAINT_REMOVAL",
  "EDIT_MODE_INPAINT_INSERTION",
  "EDIT_MODE_OUTPAINT",
  "EDIT_MODE_BGSWAP",
];
const PARAMETERS = [
  "editMode",
  "editConfig",
  "sampleCount",
  "negativePrompt",
  "seed",
  "addWatermark",
  "guidanceScale",
  "baseSteps",
  "includeRaiReason",
  "includeSafetyAttributes",
  "language",
  "personGeneration",
  "safetySetting",
  "outputOptions",
];
/** "Maximum image size uploaded or sent in a request": 10 MB (Imagen 3 model pages). */
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const FORBIDDEN = /\bforbidden\b/i;

export function predictEdit(modelId: string, rules: ImagenRules, raw: unknown): object {
  const body = requireObject(raw, "");
  for (const key of Object.keys(body))
    if (key !== "instances" && key !== "parameters" && key !== "labels") throw unknownName(key);
  const instances = body.instances;
  if (!Array.isArray(instances) || instances.length !== 1)
    throw invalidArgument("Exactly one instance is supported per request.", "instances");
  const instance = requireObject(instances[0], "instances[0]");
  for (const key of Object.keys(instance))
    if (key !== "prompt" && key !== "referenceImages") throw unknownName(key, "instances[0]");
  const prompt = instance.prompt ?? "";
  if (typeof prompt !== "string")
    throw invalidArgument("prompt must be a string.", "instances[0].prompt");
  const refs = instance.referenceImages;
  if (!Array.isArray(refs) || refs.length === 0)
    throw invalidArgument(
      "referenceImages must be a non-empty list.",
      "instances[0].referenceImages",
    );
  let rawImage: InputInfo | undefined;
  let mask: { mode: string; image?: InputInfo } | undefined;
  const ids = new Set<number>();
  for (const [i, item] of refs.entries()) {
    const at = `instances[0].referenceImages[${i}]`;
    const ref = requireObject(item, at);
    for (const key of Object.keys(ref)) {
      if (!["referenceType", "referenceId", "referenceImage", "maskImageConfig"].includes(key))
        throw unknownName(key, at);
    }
    if (!Number.isInteger(ref.referenceId) || ids.has(ref.referenceId as number))
      throw invalidArgument(
        "referenceId must be an integer unique in the request.",
        `${at}.referenceId`,
      );
    ids.add(ref.referenceId as number);
    if (ref.referenceType === "REFERENCE_TYPE_RAW") {
      if (rawImage !== undefined)
        throw invalidArgument("Only one REFERENCE_TYPE_RAW image is supported.", at);
      if (ref.maskImageConfig !== undefined) throw unknownName("maskImageConfig", at);
      rawImage = image(ref.referenceImage, `${at}.referenceImage`);
    } else if (ref.referenceType === "REFERENCE_TYPE_MASK") {
      if (mask !== undefined)
        throw invalidArgument("Only one REFERENCE_TYPE_MASK image is supported.", at);
      const config = requireObject(ref.maskImageConfig, `${at}.maskImageConfig`);
      for (const key of Object.keys(config))
        if (!["maskMode", "dilation", "maskClasses"].includes(key))
          throw unknownName(key, `${at}.maskImageConfig`);
      const mode = config.maskMode;
      if (typeof mode !== "string" || !MASK_MODES.includes(mode))
        throw invalidArgument(
          `Invalid maskMode ${JSON.stringify(mode)}.`,
          `${at}.maskImageConfig.maskMode`,
        );
      if (
        config.dilation !== undefined &&
        !(typeof config.dilation === "number" && config.dilation >= 0 && config.dilation <= 1)
      )
        throw invalidArgument(
          "dilation must be a number from 0 to 1.",
          `${at}.maskImageConfig.dilation`,
        );
      if (mode === "MASK_MODE_USER_PROVIDED") {
        mask = { mode, image: image(ref.referenceImage, `${at}.referenceImage`) };
      } else {
        if (ref.referenceImage !== undefined)
          throw invalidArgument(
            `A mask image is only taken with MASK_MODE_USER_PROVIDED.`,
            `${at}.referenceImage`,
          );
        mask = { mode };
      }
    } else {
      throw invalidArgument(
        `Unsupported referenceType ${JSON.stringify(ref.referenceType)} for ${modelId} editing.`,
        `${at}.referenceType`,
      );
    }
  }
  if (rawImage === undefined)
    throw invalidArgument(
      "A REFERENCE_TYPE_RAW image is required.",
      "instances[0].referenceImages",
    );
  if (
    mask?.image !== undefined &&
    (mask.image.width !== rawImage.width || mask.image.height !== rawImage.height)
  )
    throw invalidArgument(
      `The mask image must have the same dimensions as the raw image: ${mask.image.width}x${mask.image.height} vs ${rawImage.width}x${rawImage.height}.`,
      "instances[0].referenceImages",
    );
  const params = body.parameters === undefined ? {} : requireObject(body.parameters, "parameters");
  for (const key of Object.keys(params))
    if (!PARAMETERS.includes(key)) throw unknownName(key, "parameters");
  const editMode = params.editMode ?? "EDIT_MODE_DEFAULT";
  if (typeof editMode !== "string" || !EDIT_MODES.includes(editMode))
    throw invalidArgument(`Invalid editMode ${JSON.stringify(editMode)}.`, "parameters.editMode");
  if (MASKED_MODES.includes(editMode) && mask === undefined)
    throw invalidArgument(
      `${editMode} requires a REFERENCE_TYPE_MASK reference image.`,
      "instances[0].referenceImages",
    );
  if (editMode === "EDIT_MODE_DEFAULT" && mask !== undefined)
    throw invalidArgument(
      "EDIT_MODE_DEFAULT takes no mask; use an inpainting mode.",
      "parameters.editMode",
    );
  const count = params.sampleCount ?? 4;
  if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > rules.maxSampleCount)
    throw invalidArgument(
      `sampleCount must be an integer from 1 to ${rules.maxSampleCount}.`,
      "parameters.sampleCount",
    );
  if (params.negativePrompt !== undefined && typeof params.negativePrompt !== "string")
    throw invalidArgument("negativePrompt must be a string.", "parameters.negativePrompt");
  if (params.seed !== undefined) {
    if (!Number.isInteger(params.seed))
      throw invalidArgument("seed must be an integer.", "parameters.seed");
    if (params.addWatermark !== false)
      throw invalidArgument(
        "Seed is not supported when addWatermark is enabled. Set addWatermark to false to use a seed.",
        "parameters.seed",
      );
  }
  if (FORBIDDEN.test(prompt)) return {}; // everything filtered, nothing said: Vertex's empty answer
  const predictions = Array.from({ length: count as number }, (_, i) => ({
    bytesBase64Encoded: renderPng(
      rawImage.width,
      rawImage.height,
      `${modelId}|${editMode}|${prompt}|${String(params.seed ?? "")}|${i}`,
    ).toString("base64"),
    mimeType: "image/png",
  }));
  return { predictions };
}

/** `{bytesBase64Encoded}`: base64 of a PNG or JPEG of at most 10 MB. */
function image(value: unknown, at: string): InputInfo {
  const ref = requireObject(value, at);
  for (const key of Object.keys(ref))
    if (key !== "bytesBase64Encoded" && key !== "mimeType") throw unknownName(key, at);
  const bytes =
    typeof ref.bytesBase64Encoded === "string" ? decodeBase64(ref.bytesBase64Encoded) : undefined;
  if (bytes === undefined)
    throw invalidArgument("bytesBase64Encoded must be base64.", `${at}.bytesBase64Encoded`);
  if (bytes.length > MAX_IMAGE_BYTES)
    throw invalidArgument("The image is larger than 10 MB.", `${at}.bytesBase64Encoded`);
  const info = inspectImage(bytes);
  if (info === undefined || info.format === "webp")
    throw invalidArgument("The image must be a PNG or JPEG.", `${at}.bytesBase64Encoded`);
  return info;
}
