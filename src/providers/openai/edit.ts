/**
 * Our edit or variation → the multipart form of OpenAI's `POST /images/edits` and
 * `POST /images/variations` (https://platform.openai.com/docs/api-reference/images/createEdit,
 * …/createVariation; the field encoding is the openai SDK's, docs/research/edits.md §1.1):
 * dall-e-2 takes one `image`; GPT-image models take `image[]`, one part per image, in
 * order. The answer is the generations' shape (`response.ts`). Azure sends the same form.
 */
import type { EditInput, InputImageData } from "../../catalog/edit-rules.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import type { Form, FormFile } from "../multipart.ts";

/** The path under `api_base` an edit or variation is posted to. */
export function openAIEditPath(edit: EditInput): string {
  return edit.kind === "variation" ? "/images/variations" : "/images/edits";
}

function file(name: string, image: InputImageData, i: number): FormFile {
  return {
    name,
    filename: `${name.replace("[]", "")}-${i + 1}.${image.format === "jpeg" ? "jpg" : image.format}`,
    mimeType: image.mimeType,
    bytes: image.bytes,
  };
}

/**
 * The form for `edit`. Validation already ran; only what the client set is sent.
 * `model` undefined: the deployment names it (Azure). `dalle`: the legacy shape (one
 * `image`, `response_format` passed on); GPT-image models reject `response_format`.
 * `stream`: a streamed edit (`stream=true`, and `partial_images` where asked).
 */
export function toOpenAIEditForm(
  req: CreateImageRequest,
  edit: EditInput,
  model: string | undefined,
  dalle: boolean,
  stream = false,
): Form {
  const fields: [string, string][] = [];
  const set = (name: string, value: string | number | undefined) => {
    if (value !== undefined) fields.push([name, String(value)]);
  };
  if (edit.kind === "edit") set("prompt", req.prompt ?? "");
  set("model", model);
  set("n", req.n);
  set("size", req.size);
  if (dalle) set("response_format", req.responseFormat);
  set("user", req.user);
  if (edit.kind === "edit") {
    set("quality", req.quality);
    set("background", req.background);
    set("input_fidelity", edit.inputFidelity);
    set("output_format", req.outputFormat);
    set("output_compression", req.outputCompression);
    set("safety_identifier", req.safetyIdentifier);
    if (stream) {
      set("stream", "true");
      set("partial_images", req.partialImages);
    }
  }
  const files =
    edit.kind === "variation" || dalle
      ? [file("image", edit.images[0]!, 0)]
      : edit.images.map((image, i) => file("image[]", image, i));
  if (edit.mask !== undefined) files.push(file("mask", edit.mask, 0));
  return { fields, files };
}
