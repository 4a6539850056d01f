/**
 * Edits on Gemini image models (Google AI Studio and Vertex AI): the same `:generateContent`
 * call as a generation, with the input images as `inlineData` parts after the prompt in the
 * user turn (https://ai.google.dev/gemini-api/docs/image-generation, "image editing";
 * docs/research/edits.md §3 and §4.2). Gemini takes no mask: the catalog has none for these
 * models, so the router never sends one here.
 */
import type { EditInput } from "../../catalog/edit-rules.ts";
import type { GeminiGenerateContentRequest } from "./shapes.ts";

/** `body` with the edit's images appended to the user turn, in order. */
export function withEditImages(
  body: GeminiGenerateContentRequest,
  edit: EditInput,
): GeminiGenerateContentRequest {
  const [turn] = body.contents;
  const images = edit.images.map((image) => ({
    inlineData: { mimeType: image.mimeType, data: Buffer.from(image.bytes).toString("base64") },
  }));
  return { ...body, contents: [{ role: "user", parts: [turn.parts[0], ...images] }] };
}
