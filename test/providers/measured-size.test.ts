import { describe, expect, it } from "vitest";
import { renderPng } from "@imagegate/emulators/png";
import { measuredSize } from "../../src/service/respond.ts";

describe("measuredSize", () => {
  it("reads the produced size from the image itself when the upstream does not echo it", () => {
    expect(measuredSize([{ bytes: renderPng(1536, 1024, "x"), mimeType: "image/png" }])).toBe(
      "1536x1024",
    );
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="1024" height="1820"></svg>',
    );
    expect(measuredSize([{ bytes: svg, mimeType: "image/svg+xml" }])).toBe("1024x1820");
  });

  it("gives nothing for a URL or bytes it cannot read", () => {
    expect(
      measuredSize([{ url: "https://example.com/x.png", mimeType: "image/png" }]),
    ).toBeUndefined();
    expect(
      measuredSize([{ bytes: new Uint8Array([1, 2, 3]), mimeType: "image/png" }]),
    ).toBeUndefined();
    expect(measuredSize([])).toBeUndefined();
  });
});
