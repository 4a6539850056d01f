/**
 * Bedrock's edit planning as pure-ish functions: strength → similarityStrength over Bedrock's
 * whole range, and images that together outgrow InvokeModel's 25,000,000-byte body (in
 * base64) refused before any call, naming `image`.
 */
import { randomBytes } from "node:crypto";
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import type { InputImageData } from "../../src/catalog/edit-rules.ts";
import { create } from "@bufbuild/protobuf";
import { GatewayError } from "../../src/errors/errors.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import {
  MAX_BASE64_BYTES,
  planBedrockEdit,
  similarityFor,
} from "../../src/providers/bedrock/edit.ts";

const catalog = loadCatalog();
const nova = catalog.lookup("bedrock", "amazon.nova-canvas-v1:0")!;

describe("similarityFor", () => {
  it("maps strength 0..1 linearly onto similarityStrength 1.0..0.2", () => {
    expect([0, 0.25, 0.5, 1].map(similarityFor)).toEqual([1, 0.8, 0.6, 0.2]);
  });
});

describe("planBedrockEdit", () => {
  /** An opaque RGB PNG of random pixels: it does not compress, so its size is its pixels'. */
  function noise(side: number): InputImageData {
    const png = new PNG({ width: side, height: side, colorType: 2, inputHasAlpha: false });
    png.data = randomBytes(side * side * 3);
    const bytes = PNG.sync.write(png, { colorType: 2, inputHasAlpha: false });
    return { bytes, format: "png", mimeType: "image/png", width: side, height: side };
  }

  it("refuses five large variation inputs that outgrow the request in base64", async () => {
    const big = noise(1250); // about 4.7 MB: under the 5 MB per image, 23 MB for five
    const request = create(CreateImageRequestSchema, { prompt: "x" });
    const err = await planBedrockEdit(
      request,
      { kind: "edit", images: [big, big, big, big, big] },
      nova,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).param).toBe("image");
    expect((err as GatewayError).message).toContain(String(MAX_BASE64_BYTES));
    // Three of them fit.
    const plan = await planBedrockEdit(request, { kind: "edit", images: [big, big, big] }, nova);
    expect(plan.edit?.task).toBe("IMAGE_VARIATION");
  });
});
