/**
 * `WxH`, as sizes are written everywhere (OpenAI's `size`, the catalog's values, price
 * tiers, the size an upstream produced), read in this one place so all of them agree on
 * what a size is.
 */
export interface PixelSize {
  width: number;
  height: number;
}

/**
 * `WxH` in plain decimal pixels, e.g. `1024x1536`: no sign, no leading zero, at most six
 * digits a side; undefined for anything else.
 */
export function parseSize(size: string): PixelSize | undefined {
  const match = /^([1-9]\d{0,5})x([1-9]\d{0,5})$/.exec(size);
  if (!match) return undefined;
  return { width: Number(match[1]), height: Number(match[2]) };
}
