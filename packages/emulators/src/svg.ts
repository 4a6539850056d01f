/**
 * Small, real SVG documents for the vector-model emulators (Recraft `_vector`): a gradient
 * background and a few shapes whose colours come from a hash of a seed.
 */
import { createHash } from "node:crypto";

/** An SVG document of `width`×`height` user units (also its viewBox), content derived from `seed`. */
export function renderSvg(width: number, height: number, seed: string): string {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`renderSvg: invalid size ${width}x${height}`);
  }
  const h = createHash("sha256").update(seed).digest();
  const colour = (i: number) => `#${h.subarray(i, i + 3).toString("hex")}`;
  const r = Math.round(Math.min(width, height) / 4);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
    `<stop offset="0" stop-color="${colour(0)}"/><stop offset="1" stop-color="${colour(3)}"/></linearGradient></defs>` +
    `<rect width="${width}" height="${height}" fill="url(#g)"/>` +
    `<circle cx="${Math.round(width / 2)}" cy="${Math.round(height / 2)}" r="${r}" fill="${colour(6)}"/>` +
    `<path d="M0 ${height} L${Math.round(width / 3)} ${Math.round(height / 2)} L${Math.round((2 * width) / 3)} ${height} Z" fill="${colour(9)}"/>` +
    `</svg>\n`
  );
}

/** Width and height of an SVG root element's `width`/`height` attributes; throws if absent. */
export function svgSize(svg: string | Uint8Array): { width: number; height: number } {
  const text = typeof svg === "string" ? svg : Buffer.from(svg).toString("utf8");
  const root = /<svg\b[^>]*>/.exec(text)?.[0];
  const width = root && /\swidth="(\d+)"/.exec(root)?.[1];
  const height = root && /\sheight="(\d+)"/.exec(root)?.[1];
  if (!width || !height) throw new Error("not an SVG with width and height");
  return { width: Number(width), height: Number(height) };
}
