/**
 * Input images as the emulated edit APIs check them: what the bytes are (by magic numbers),
 * their pixel size (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X headers), and for PNGs the pixels
 * themselves (pngjs), to check masks are pure black and white and inputs opaque.
 * Independent of the gateway's own reading (src/service/input-images.ts), on purpose.
 */
import { PNG } from "pngjs";

export type InputFormat = "png" | "jpeg" | "webp";

export interface InputInfo {
  format: InputFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Format and size of an image file, or undefined when it is none of PNG, JPEG, WebP (or unreadable). */
export function inspectImage(b: Buffer): InputInfo | undefined {
  if (b.length >= 24 && b.subarray(0, 8).equals(PNG_SIGNATURE))
    return { format: "png", width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    const size = jpegSize(b);
    return size && { format: "jpeg", ...size };
  }
  if (
    b.length >= 30 &&
    b.toString("latin1", 0, 4) === "RIFF" &&
    b.toString("latin1", 8, 12) === "WEBP"
  ) {
    const size = webpSize(b);
    return size && { format: "webp", ...size };
  }
  return undefined;
}

/** The size in a JPEG's first SOFn segment. */
function jpegSize(b: Buffer): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    const length = b.readUInt16BE(i + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isSof) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    i += 2 + length;
  }
  return undefined;
}

function webpSize(b: Buffer): { width: number; height: number } | undefined {
  const chunk = b.toString("latin1", 12, 16);
  if (chunk === "VP8X") return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  if (chunk === "VP8L") {
    const bits = b.readUInt32LE(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8 ")
    return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  return undefined;
}

/** A PNG's pixels as RGBA, or undefined when pngjs cannot read it. */
export function decodePng(b: Buffer): PNG | undefined {
  try {
    return PNG.sync.read(b);
  } catch {
    return undefined;
  }
}

/** Whether every pixel is pure black or pure white (and opaque). */
export function isBlackAndWhite(png: PNG): boolean {
  const d = png.data;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i]!;
    if ((v !== 0 && v !== 255) || d[i + 1] !== v || d[i + 2] !== v || d[i + 3] !== 255)
      return false;
  }
  return true;
}

/** Whether any pixel is transparent or semi-transparent. */
export function hasTransparency(png: PNG): boolean {
  const d = png.data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 255) return true;
  return false;
}

/** Decodes strict base64 (what Bedrock and Vertex take), or undefined. */
export function decodeBase64(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, "base64");
}
