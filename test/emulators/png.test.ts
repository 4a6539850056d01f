import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { pngSize, renderPng } from "@imagegate/emulators/png";

describe("renderPng", () => {
  it.each([
    [1, 1],
    [256, 256],
    [1536, 1024],
    [1024, 1792],
    [2048, 1152],
  ])("produces a decodable %ix%i PNG", (width, height) => {
    const buf = renderPng(width, height, `seed-${width}`);
    expect(pngSize(buf)).toEqual({ width, height });
    const decoded = PNG.sync.read(buf);
    expect(decoded.width).toBe(width);
    expect(decoded.height).toBe(height);
  });

  it("is deterministic per seed and varies across seeds", () => {
    expect(renderPng(64, 64, "a").equals(renderPng(64, 64, "a"))).toBe(true);
    const distinct = new Set(
      Array.from({ length: 40 }, (_, i) => renderPng(64, 64, `s${i}`).toString("base64")),
    );
    expect(distinct.size).toBeGreaterThan(4);
  });

  it("draws a gradient, not a flat colour", () => {
    const { data, width, height } = PNG.sync.read(renderPng(32, 32, "gradient"));
    const first = [...data.subarray(0, 3)];
    const last = [...data.subarray((width * height - 1) * 4, (width * height - 1) * 4 + 3)];
    expect(first).not.toEqual(last);
  });

  it("hands out copies, so callers cannot corrupt the cache", () => {
    const a = renderPng(16, 16, "copy");
    a.fill(0);
    expect(pngSize(renderPng(16, 16, "copy"))).toEqual({ width: 16, height: 16 });
  });

  it("is fast: 1024x1024 cold in well under a second, cached in a few ms", () => {
    const cold = performance.now();
    renderPng(1024, 1024, "speed-test-unique-seed");
    const coldMs = performance.now() - cold;
    const warm = performance.now();
    for (let i = 0; i < 10; i++) renderPng(1024, 1024, "speed-test-unique-seed");
    const warmMs = (performance.now() - warm) / 10;
    expect(coldMs).toBeLessThan(500);
    expect(warmMs).toBeLessThan(10);
  });

  it("rejects invalid sizes", () => {
    expect(() => renderPng(0, 10, "x")).toThrow(RangeError);
    expect(() => renderPng(10.5, 10, "x")).toThrow(RangeError);
    expect(() => renderPng(100_000, 10, "x")).toThrow(RangeError);
  });
});

describe("pngSize", () => {
  it("rejects non-PNG data", () => {
    expect(() => pngSize(Buffer.from("GIF89a-not-a-png-at-all-really"))).toThrow(/not a PNG/);
    expect(() => pngSize(Buffer.alloc(4))).toThrow(/not a PNG/);
  });

  it("accepts a Uint8Array view", () => {
    const buf = renderPng(20, 10, "view");
    expect(pngSize(new Uint8Array(buf))).toEqual({ width: 20, height: 10 });
  });
});
