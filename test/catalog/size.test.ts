import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSize } from "../../src/catalog/size.ts";
import { sourceFiles } from "../support/import-graph.ts";

describe("parseSize", () => {
  it("reads WxH in plain decimal pixels", () => {
    expect(parseSize("1024x1536")).toEqual({ width: 1024, height: 1536 });
    expect(parseSize("1x999999")).toEqual({ width: 1, height: 999_999 });
  });

  it("refuses anything else", () => {
    for (const size of [
      "auto",
      "1024",
      "1024X1024",
      "1024x",
      "0x512",
      "01024x1024",
      "1024x1024 ",
      "-1x5",
      "1.5x2",
      "1000000x1",
    ])
      expect(parseSize(size), size).toBeUndefined();
  });
});

describe("WxH", () => {
  // (The emulators, packages/emulators, read sizes by their own rules on purpose.)
  it("is parsed by src/catalog/size.ts alone", () => {
    const src = resolve(import.meta.dirname, "../../src");
    const parsers = /\)x\(|\\d\+x\\d|split\(\s*["']x["']\s*\)/;
    const found = [...sourceFiles(src, ["gen"])]
      .filter(([, text]) => parsers.test(text))
      .map(([file]) => file);
    expect(found).toEqual([join("catalog", "size.ts")]);
  });
});
