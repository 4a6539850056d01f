/**
 * Our request → the body of OpenAI's Images API
 * (https://platform.openai.com/docs/api-reference/images/create). Azure OpenAI sends the same body.
 */
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";

/** The request body OpenAI documents; only fields the client set are sent. */
export interface OpenAIImagesRequest {
  prompt: string;
  model?: string;
  n?: number;
  quality?: string;
  response_format?: string;
  size?: string;
  style?: string;
  user?: string;
  background?: string;
  moderation?: string;
  output_format?: string;
  output_compression?: number;
  safety_identifier?: string;
}

/**
 * Our request → OpenAI's body. Validation already ran; this only copies what was set.
 * `response_format` goes only to models that take it (DALL·E); GPT-image models reject it
 * and always answer base64, which is what a client asking `b64_json` wants anyway.
 */
export function toOpenAIRequest(
  req: CreateImageRequest,
  model: string | undefined,
  takesResponseFormat = true,
): OpenAIImagesRequest {
  const body: OpenAIImagesRequest = { prompt: req.prompt ?? "" };
  if (model !== undefined) body.model = model;
  if (req.n !== undefined) body.n = req.n;
  if (req.quality !== undefined) body.quality = req.quality;
  if (req.responseFormat !== undefined && takesResponseFormat)
    body.response_format = req.responseFormat;
  if (req.size !== undefined) body.size = req.size;
  if (req.style !== undefined) body.style = req.style;
  if (req.user !== undefined) body.user = req.user;
  if (req.background !== undefined) body.background = req.background;
  if (req.moderation !== undefined) body.moderation = req.moderation;
  if (req.outputFormat !== undefined) body.output_format = req.outputFormat;
  if (req.outputCompression !== undefined) body.output_compression = req.outputCompression;
  if (req.safetyIdentifier !== undefined) body.safety_identifier = req.safetyIdentifier;
  return body;
}
