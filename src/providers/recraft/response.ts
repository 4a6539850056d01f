/**
 * Recraft's 200 answer → our result: images as URLs or base64, raster or SVG, and the
 * credits it charged.
 */
import type { GeneratedImage, GenerationResult } from "../types.ts";
import { malformedBody } from "../json.ts";
import { PROVIDER_NAME } from "./errors.ts";
import { isVectorModel } from "./request.ts";
import { own } from "../../runtime/own.ts";

interface RecraftImagesResponse {
  created?: unknown;
  credits?: unknown;
  data?: Array<{ image_id?: unknown; url?: unknown; b64_json?: unknown }>;
}

/** Magic numbers of what Recraft may return as bytes. */
const MAGIC: ReadonlyArray<{ test: (b: Buffer) => boolean; mimeType: string }> = [
  {
    test: (b) =>
      b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    mimeType: "image/png",
  },
  {
    test: (b) => b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP",
    mimeType: "image/webp",
  },
  { test: (b) => b[0] === 0xff && b[1] === 0xd8, mimeType: "image/jpeg" },
  {
    test: (b) => /^\s*(<\?xml[^>]*>\s*)?<svg\b/.test(b.toString("utf8", 0, 256)),
    mimeType: "image/svg+xml",
  },
];

const MIME_BY_EXTENSION: Readonly<Record<string, string>> = {
  png: "image/png",
  webp: "image/webp",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  svg: "image/svg+xml",
};

function mimeOfUrl(url: string, vector: boolean): string {
  const ext = /\.([a-z]+)$/i.exec(safePath(url))?.[1]?.toLowerCase();
  return own(MIME_BY_EXTENSION, ext) ?? (vector ? "image/svg+xml" : "image/png");
}

function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return "";
  }
}

/**
 * Recraft's 200 body → our result: images as it sent them (a URL on its host, or bytes), SVG
 * for vector models, the size that was asked for, and `credits` (1000 = $1) as the charge.
 */
export function fromRecraftResponse(json: unknown, model: string, size: string): GenerationResult {
  if (
    json === null ||
    typeof json !== "object" ||
    !Array.isArray((json as RecraftImagesResponse).data)
  ) {
    throw malformedBody("the body has no `data` array", PROVIDER_NAME);
  }
  const body = json as RecraftImagesResponse;
  const vector = isVectorModel(model);
  const images = (body.data ?? []).map((item, i): GeneratedImage => {
    if (item === null || typeof item !== "object")
      throw malformedBody(`data[${i}] is not an object`, PROVIDER_NAME);
    if (typeof item.b64_json === "string") {
      const bytes = Buffer.from(item.b64_json, "base64");
      const mimeType =
        MAGIC.find((m) => m.test(bytes))?.mimeType ?? (vector ? "image/svg+xml" : "image/png");
      return { bytes, mimeType };
    }
    if (typeof item.url === "string")
      return { url: item.url, mimeType: mimeOfUrl(item.url, vector) };
    throw malformedBody(`data[${i}] has neither url nor b64_json`, PROVIDER_NAME);
  });
  if (images.length === 0) throw malformedBody("the body has no images", PROVIDER_NAME);
  const result: GenerationResult = { images, size, filtered: 0 };
  if (typeof body.credits === "number" && Number.isFinite(body.credits) && body.credits >= 0)
    result.costUsd = body.credits / 1000;
  return result;
}
