/**
 * An edit's input images, read and measured before any model is considered: bytes (protobuf,
 * multipart), a `data:` URL, or an `https://` URL on an allowed host (fetched under the
 * download guard). What an image is comes from its magic numbers, never from what the
 * client declared; its size from its header (`image-size`). Each problem is a 400 naming
 * `image` or `mask`.
 */
import { imageSize } from "image-size";
import type { InputFormat } from "../catalog/catalog.ts";
import type { InputImageData } from "../catalog/edit-rules.ts";
import { invalidParam } from "../errors/errors.ts";
import type { InputImage } from "../gen/imagegate/v1/images_pb.js";
import type { ImageDownloader } from "../store/download.ts";

/** The contract's limit for any input image, whatever the model (each image ≤ 50 MB). */
export const MAX_INPUT_IMAGE_BYTES = 50 * 1024 * 1024;

const MIME: Record<InputFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

/** PNG, JPEG or WebP by the first bytes; undefined for anything else. */
export function sniffFormat(bytes: Uint8Array): InputFormat | undefined {
  const b = bytes;
  if (
    b.length >= 8 &&
    b[0] === 0x89 &&
    b[1] === 0x50 &&
    b[2] === 0x4e &&
    b[3] === 0x47 &&
    b[4] === 0x0d &&
    b[5] === 0x0a &&
    b[6] === 0x1a &&
    b[7] === 0x0a
  )
    return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") return "webp";
  return undefined;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

/** Measures bytes already read: format by magic numbers, dimensions from the header. */
export function measureImage(
  bytes: Uint8Array,
  param: string,
  what = `'${param}'`,
): InputImageData {
  if (bytes.byteLength === 0)
    throw invalidParam(param, `Invalid ${what}: the file is empty.`, "invalid_image");
  if (bytes.byteLength > MAX_INPUT_IMAGE_BYTES) {
    throw invalidParam(
      param,
      `Invalid ${what}: the image is ${bytes.byteLength} bytes; images must be at most 50 MB.`,
      "image_too_large",
    );
  }
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw invalidParam(
      param,
      `Invalid ${what}: the file is not a PNG, JPEG or WebP image.`,
      "invalid_image_format",
    );
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = imageSize(bytes));
  } catch {
    // unreadable header: below
  }
  if (!width || !height) {
    throw invalidParam(
      param,
      `Invalid ${what}: the ${format.toUpperCase()} image's size could not be read.`,
      "invalid_image",
    );
  }
  return { bytes, format, mimeType: MIME[format], width, height };
}

/** Reads one input image from the request: its bytes, a `data:` URL, or an allowed `https://` URL. */
export async function readInputImage(
  image: InputImage,
  param: "image" | "mask",
  downloader: ImageDownloader,
  signal: AbortSignal,
  index?: number,
): Promise<InputImageData> {
  const what =
    index === undefined || index === 0 ? `'${param}'` : `'${param}' (image ${index + 1})`;
  if (image.data !== undefined && image.data.byteLength > 0) {
    if (image.imageUrl !== undefined)
      throw invalidParam(param, `Invalid ${what}: send either the image's data or its image_url.`);
    return measureImage(image.data, param, what);
  }
  const url = image.imageUrl;
  if (url === undefined || url === "") {
    throw invalidParam(param, `Invalid ${what}: no image data or image_url was sent.`);
  }
  if (url.startsWith("data:")) return measureImage(fromDataUrl(url, param, what), param, what);
  if (!url.startsWith("https://")) {
    throw invalidParam(
      param,
      `Invalid ${what}: image_url must be a data: URL or an https:// URL.`,
      "invalid_image_url",
    );
  }
  const { bytes } = await downloader.fetchForClient(url, param, signal);
  return measureImage(bytes, param, what);
}

/** `data:[<media type>][;base64],<data>`: only the base64 form carries binary. */
function fromDataUrl(url: string, param: string, what: string): Buffer {
  const comma = url.indexOf(",");
  const head = comma < 0 ? "" : url.slice(5, comma);
  if (comma < 0 || !/;base64$/i.test(head)) {
    throw invalidParam(
      param,
      `Invalid ${what}: a data: URL must be base64 (data:image/png;base64,...).`,
      "invalid_image_url",
    );
  }
  const payload = url.slice(comma + 1);
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(payload)) {
    throw invalidParam(
      param,
      `Invalid ${what}: the data: URL is not valid base64.`,
      "invalid_image_url",
    );
  }
  return Buffer.from(payload, "base64");
}
