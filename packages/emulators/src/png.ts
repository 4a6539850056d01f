/**
 * Real, small PNG images for the provider emulators: a diagonal two-colour gradient whose
 * colours come from a hash of a seed. Results are cached, so repeated calls are cheap.
 */
import { createHash } from "node:crypto";
import { PNG } from "pngjs";

/** Distinct colour schemes a seed can map to; few, so the cache stays effective. */
const VARIANTS = 16;
const CACHE_MAX_ENTRIES = 48;
const CACHE_MAX_BYTES = 96 * 1024 * 1024;
/** Largest side we render; guards against a typo allocating gigabytes. */
const MAX_SIDE = 16_384;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Insertion-ordered Map used as an LRU: a hit is moved to the end, eviction takes the front. */
const cache = new Map<string, Buffer>();
let cachedBytes = 0;

/**
 * PNG bytes of exactly `width`×`height` pixels, content derived from `seed`.
 * The returned buffer is the caller's own copy.
 */
export function renderPng(width: number, height: number, seed: string): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`renderPng: invalid size ${width}x${height}`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE) {
    throw new RangeError(`renderPng: size ${width}x${height} exceeds ${MAX_SIDE} per side`);
  }
  const variant = seedVariant(seed);
  const key = `${width}x${height}:${variant}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return Buffer.from(hit);
  }
  const png = encode(width, height, variant);
  remember(key, png);
  return Buffer.from(png);
}

/** Width and height from a PNG's IHDR chunk; throws if `buf` is not a PNG. */
export function pngSize(buf: Uint8Array): { width: number; height: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 24 || !b.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new Error("not a PNG (bad signature)");
  }
  if (b.toString("latin1", 12, 16) !== "IHDR") {
    throw new Error("not a PNG (first chunk is not IHDR)");
  }
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function seedVariant(seed: string): number {
  return createHash("sha256").update(seed).digest().readUInt32BE(0) % VARIANTS;
}

function encode(width: number, height: number, variant: number): Buffer {
  const from = hueToRgb(variant / VARIANTS);
  const to = hueToRgb((variant / VARIANTS + 1 / 3) % 1);
  const data = Buffer.allocUnsafe(width * height * 3);
  const span = Math.max(1, width + height - 2);
  // Build a lookup of the gradient along the diagonal, then index it per pixel.
  const ramp = new Uint8Array((span + 1) * 3);
  for (let i = 0; i <= span; i++) {
    const t = i / span;
    for (let c = 0; c < 3; c++) {
      ramp[i * 3 + c] = Math.round(from[c]! + (to[c]! - from[c]!) * t);
    }
  }
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = (x + y) * 3;
      data[o++] = ramp[r]!;
      data[o++] = ramp[r + 1]!;
      data[o++] = ramp[r + 2]!;
    }
  }
  const png = new PNG(); // no size in the constructor: it would allocate an RGBA buffer we don't use
  png.width = width;
  png.height = height;
  png.data = data;
  // RGB in and out, the "Sub" filter (a gradient becomes near-constant bytes) and fast deflate.
  return PNG.sync.write(png, {
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
    filterType: 1,
    deflateLevel: 1,
  });
}

function remember(key: string, png: Buffer): void {
  if (png.length > CACHE_MAX_BYTES) return;
  cache.set(key, png);
  cachedBytes += png.length;
  for (const [k, v] of cache) {
    if (cache.size <= CACHE_MAX_ENTRIES && cachedBytes <= CACHE_MAX_BYTES) break;
    cache.delete(k);
    cachedBytes -= v.length;
  }
}

/** Fully saturated colour for a hue in [0, 1). */
function hueToRgb(h: number): [number, number, number] {
  const channel = (n: number): number => {
    const k = (n + h * 12) % 12;
    return Math.round(255 * (0.5 - 0.5 * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [channel(0), channel(8), channel(4)];
}
