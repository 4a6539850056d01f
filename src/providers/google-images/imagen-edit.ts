/**
 * Edits on Imagen's editing model (`imagen-3.0-capability-001` on Vertex AI), through
 * `:predict` with reference images
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit;
 * docs/research/edits.md §4.1):
 * - with a mask → `EDIT_MODE_INPAINT_INSERTION`: the image as REFERENCE_TYPE_RAW (id 1) and
 *   the mask as REFERENCE_TYPE_MASK (id 2, `MASK_MODE_USER_PROVIDED`), converted from OpenAI's
 *   alpha mask to a grey PNG whose non-zero (white) pixels mark the area to change;
 * - without → `EDIT_MODE_DEFAULT` with the image alone (mask-free editing by the prompt).
 * The answer is a generation's (`imagen.ts`), at the input image's size.
 */
import type { EditInput } from "../../catalog/edit-rules.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { maskFromAlpha } from "../edit-images.ts";
import type { ImagenEditRequest, ImagenReferenceImage } from "./shapes.ts";

/** An edit's references, read and converted once for every call of a fan-out. */
export interface ImagenEdit {
  references: ImagenReferenceImage[];
  editMode: ImagenEditRequest["parameters"]["editMode"];
  /** The size produced: the input image's. */
  size: string;
}

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/** Our edit → its reference images and mode; a `size` is a 400 (the result keeps the input's). */
export async function planImagenEdit(
  req: CreateImageRequest,
  edit: EditInput,
): Promise<ImagenEdit> {
  if (req.size !== undefined && req.size !== "auto") {
    throw invalidParam(
      "size",
      "Unsupported parameter: 'size' is not taken by Imagen edits: the result keeps the input image's size.",
    );
  }
  const image = edit.images[0]!;
  const references: ImagenReferenceImage[] = [
    {
      referenceType: "REFERENCE_TYPE_RAW",
      referenceId: 1,
      referenceImage: { bytesBase64Encoded: base64(image.bytes) },
    },
  ];
  const size = `${image.width}x${image.height}`;
  if (edit.mask === undefined) return { references, editMode: "EDIT_MODE_DEFAULT", size };
  references.push({
    referenceType: "REFERENCE_TYPE_MASK",
    referenceId: 2,
    referenceImage: { bytesBase64Encoded: base64(await maskFromAlpha(edit.mask, "white", "grey")) },
    maskImageConfig: { maskMode: "MASK_MODE_USER_PROVIDED" },
  });
  return { references, editMode: "EDIT_MODE_INPAINT_INSERTION", size };
}

/** The `:predict` body of one call making `sampleCount` images. A seed needs the watermark off. */
export function toImagenEditRequest(
  req: CreateImageRequest,
  edit: ImagenEdit,
  sampleCount: number,
): ImagenEditRequest {
  const parameters: ImagenEditRequest["parameters"] = {
    editMode: edit.editMode,
    sampleCount,
    includeRaiReason: true,
  };
  if (req.negativePrompt !== undefined) parameters.negativePrompt = req.negativePrompt;
  if (req.seed !== undefined) {
    parameters.seed = req.seed;
    parameters.addWatermark = false;
  }
  return {
    instances: [{ prompt: req.prompt ?? "", referenceImages: edit.references }],
    parameters,
  };
}
