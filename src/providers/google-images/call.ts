/**
 * Google image generation, shared by Google AI Studio (`gemini/…`) and Vertex AI
 * (`vertex_ai/…`). Both serve Imagen through `:predict` and Gemini image models through
 * `:generateContent`, with the same bodies, responses, refusals and error shape; the two
 * adapters differ only in URL and credentials (a `GoogleEndpoint`).
 */
import { GatewayError } from "../../errors/errors.ts";
import { first, sendUpstream } from "../http.ts";
import { type ParsedImagesBody, parseImagesJson } from "../image-json.ts";
import { fanOut, requireImages } from "../results.ts";
import type { GenerationResult, UpstreamCall } from "../types.ts";
import { malformedBody } from "../json.ts";
import { type CallOutcome, GEMINI_IMAGE_KEYS, IMAGEN_IMAGE_KEYS } from "./shapes.ts";
import { fromGeminiResponse, geminiProducedSize, toGeminiRequest } from "./gemini-image.ts";
import { fromGoogleError } from "./errors.ts";
import { withEditImages } from "./edit.ts";
import { type ImagenEdit, planImagenEdit, toImagenEditRequest } from "./imagen-edit.ts";
import { fromImagenResponse, imagenProducedSize, toImagenRequest } from "./imagen.ts";

/** Where and how one Google API is called; the rest is shared. */
export interface GoogleEndpoint {
  /** Names the upstream in messages: "Google AI Studio", "Vertex AI". */
  label: string;
  /** The URL of `method` for the deployment's model. */
  url(method: "predict" | "generateContent"): string;
  /** Credential headers for one call (Vertex may have to fetch a token first). */
  headers(signal: AbortSignal): Promise<Record<string, string>>;
  /** Told when the upstream refused the credential, so a cached one is dropped. */
  onAuthRejected?(): void;
}

/** Images per upstream call by family: Imagen's sampleCount tops out at 4, Gemini makes one. */
const FAMILY_MAX_PER_CALL: Readonly<Record<string, number>> = { imagen: 4, "gemini-image": 1 };

/**
 * Runs a request on a Google API: fans out past the per-call maximum, merges the answers,
 * and turns "nothing survived the safety filter" into a refusal. A chunk whose images were
 * all filtered does not fail the others: survivors are returned and only they are charged.
 */
export async function generateGoogleImages(
  call: UpstreamCall,
  endpoint: GoogleEndpoint,
): Promise<GenerationResult> {
  const { deployment, request } = call;
  const family = deployment.spec.family;
  const familyMax = FAMILY_MAX_PER_CALL[family];
  if (familyMax === undefined) {
    throw new GatewayError(
      "internal",
      `${endpoint.label} cannot serve the '${family}' family (${deployment.model})`,
    );
  }
  const perCall = Math.min(deployment.spec.upstream_max_n, familyMax);
  const refusals: string[] = [];
  // An Imagen edit's references are read (and the mask converted) once for every call.
  const imagenEdit =
    family === "imagen" && call.edit !== undefined
      ? await planImagenEdit(request, call.edit)
      : undefined;
  const once = async (count: number): Promise<GenerationResult> => {
    const outcome =
      family !== "imagen"
        ? await geminiCall(call, endpoint)
        : imagenEdit === undefined
          ? await imagenCall(call, endpoint, count)
          : await imagenEditCall(call, endpoint, imagenEdit, count);
    if (outcome.refusal !== undefined) refusals.push(outcome.refusal);
    return outcome.result;
  };
  const merged = await fanOut(request.n ?? 1, perCall, once);
  return requireImages(merged, endpoint.label, refusals[0]);
}

async function imagenCall(
  call: UpstreamCall,
  endpoint: GoogleEndpoint,
  count: number,
): Promise<CallOutcome> {
  const body = toImagenRequest(call.request, call.deployment.spec, count);
  const { json, images } = await postJson(call, endpoint, "predict", body, IMAGEN_IMAGE_KEYS);
  return fromImagenResponse(json, count, imagenProducedSize(body, call.deployment.spec), images);
}

async function imagenEditCall(
  call: UpstreamCall,
  endpoint: GoogleEndpoint,
  edit: ImagenEdit,
  count: number,
): Promise<CallOutcome> {
  const body = toImagenEditRequest(call.request, edit, count);
  const { json, images } = await postJson(call, endpoint, "predict", body, IMAGEN_IMAGE_KEYS);
  return fromImagenResponse(json, count, edit.size, images);
}

async function geminiCall(call: UpstreamCall, endpoint: GoogleEndpoint): Promise<CallOutcome> {
  const generation = toGeminiRequest(call.request, call.deployment.spec);
  // An edit is the same call with the input images beside the prompt.
  const body = call.edit === undefined ? generation : withEditImages(generation, call.edit);
  const { json, images } = await postJson(
    call,
    endpoint,
    "generateContent",
    body,
    GEMINI_IMAGE_KEYS,
  );
  return fromGeminiResponse(json, geminiProducedSize(call.deployment.spec, body), images);
}

async function postJson(
  { deployment, signal, allocate }: UpstreamCall,
  endpoint: GoogleEndpoint,
  method: "predict" | "generateContent",
  body: object,
  imageKeys: readonly string[],
): Promise<ParsedImagesBody> {
  const headers = { ...(await endpoint.headers(signal)), "content-type": "application/json" };
  const res = await sendUpstream(endpoint.url(method), {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal,
    timeoutMs: deployment.timeoutMs,
  });
  if (res.status !== 200) {
    const error = fromGoogleError(res, endpoint.label);
    if (error.reason === "auth_failed") endpoint.onAuthRejected?.();
    throw error;
  }
  const contentType = first(res.headers["content-type"]) ?? "";
  const parsed = contentType.includes("json")
    ? parseImagesJson(res.chunks, imageKeys, allocate)
    : undefined;
  if (parsed === undefined) throw malformedBody("the body is not JSON");
  return parsed;
}
