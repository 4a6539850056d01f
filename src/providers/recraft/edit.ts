/**
 * Edits on Recraft, as `multipart/form-data` (docs/research/edits.md §6):
 * - with a mask → `POST /images/inpaint` (https://www.recraft.ai/docs/api-reference/tools/inpainting):
 *   `image`, `mask` (grey, white where to change, the image's size: OpenAI's alpha mask is
 *   converted by edit-images.ts), `prompt`, `n`, `model`, `style`, `negative_prompt`,
 *   `response_format`; no strength;
 * - without → `POST /images/imageToImage`
 *   (https://www.recraft.ai/docs/api-reference/tools/image-to-image): the same without the
 *   mask, plus `strength` (0-1, required: 0 stays close to the image, 1 departs from it).
 * The output keeps the input's size. What only this mapping knows is a 400 before any call.
 */
import type { EditInput, InputImageData } from "../../catalog/edit-rules.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { maskFromAlpha } from "../edit-images.ts";
import type { Form, FormFile } from "../multipart.ts";

export interface RecraftEdit {
  /** Under `api_base`: `/images/inpaint` or `/images/imageToImage`. */
  path: "/images/inpaint" | "/images/imageToImage";
  image: FormFile;
  /** Inpainting: the converted mask. */
  mask?: FormFile;
  strength?: number;
  /** The size produced: the input image's. */
  size: string;
}

function file(name: string, image: InputImageData): FormFile {
  const ext = image.format === "jpeg" ? "jpg" : image.format;
  return { name, filename: `${name}.${ext}`, mimeType: image.mimeType, bytes: image.bytes };
}

/** Our edit → which endpoint and its files; converts the mask. Catalog checks already ran. */
export async function planRecraftEdit(
  req: CreateImageRequest,
  edit: EditInput,
  model: string,
): Promise<RecraftEdit> {
  const image = edit.images[0]!;
  if (req.size !== undefined && req.size !== "auto") {
    throw invalidParam(
      "size",
      "Unsupported parameter: 'size' is not taken by Recraft edits: the result keeps the input image's size.",
    );
  }
  const size = `${image.width}x${image.height}`;
  if (edit.mask !== undefined) {
    if (edit.strength !== undefined) {
      throw invalidParam(
        "strength",
        `Unsupported parameter: 'strength' is not taken by ${model} inpainting (with a mask); it is for image-to-image (without one).`,
      );
    }
    const mask = await maskFromAlpha(edit.mask, "white", "grey");
    return {
      path: "/images/inpaint",
      image: file("image", image),
      mask: { name: "mask", filename: "mask.png", mimeType: "image/png", bytes: mask },
      size,
    };
  }
  if (edit.strength === undefined) {
    throw invalidParam(
      "strength",
      `Missing required parameter: 'strength'. ${model} edits without a mask image to image and needs it (0 stays close to the image, 1 departs from it).`,
    );
  }
  return {
    path: "/images/imageToImage",
    image: file("image", image),
    strength: edit.strength,
    size,
  };
}

/** The form of one call making `count` images. Only what the request set is sent. */
export function toRecraftEditForm(
  req: CreateImageRequest,
  edit: RecraftEdit,
  model: string,
  count: number,
): Form {
  const fields: [string, string][] = [
    ["prompt", req.prompt ?? ""],
    ["model", model],
    ["n", String(count)],
  ];
  if (edit.strength !== undefined) fields.push(["strength", String(edit.strength)]);
  if (req.style !== undefined) fields.push(["style", req.style]);
  if (req.negativePrompt !== undefined) fields.push(["negative_prompt", req.negativePrompt]);
  if (req.seed !== undefined) fields.push(["random_seed", String(req.seed)]);
  if (req.responseFormat !== undefined) fields.push(["response_format", req.responseFormat]);
  const files = edit.mask === undefined ? [edit.image] : [edit.image, edit.mask];
  return { fields, files };
}
