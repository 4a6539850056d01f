import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/errors.ts";
import { UsageSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { fanOut, requireImages } from "../../src/providers/results.ts";
import type { GenerationResult } from "../../src/providers/types.ts";

const image = (i: number) => ({ bytes: new Uint8Array([i]), mimeType: "image/png" });

describe("fanOut", () => {
  it("splits n into calls of at most perCall and merges images, usage and filtered counts", async () => {
    const calls: number[] = [];
    const result = await fanOut(10, 4, async (count): Promise<GenerationResult> => {
      calls.push(count);
      return {
        images: Array.from({ length: count - 1 }, (_, i) => image(i)),
        filtered: 1,
        size: "1024x1024",
        usage: create(UsageSchema, {
          inputTokens: 10,
          outputTokens: 100 * count,
          totalTokens: 10 + 100 * count,
          inputTokensDetails: { textTokens: 10 },
        }),
      };
    });
    expect(calls.sort()).toEqual([2, 4, 4]);
    expect(result.images).toHaveLength(7);
    expect(result.filtered).toBe(3);
    expect(result.size).toBe("1024x1024");
    expect(result.usage?.inputTokens).toBe(30);
    expect(result.usage?.outputTokens).toBe(1000);
    expect(result.usage?.totalTokens).toBe(1030);
    expect(result.usage?.inputTokensDetails?.textTokens).toBe(30);
  });

  it("clamps summed token counts to uint32", async () => {
    const big = 3_000_000_000;
    const result = await fanOut(2, 1, async () => ({
      images: [image(0)],
      filtered: 0,
      usage: create(UsageSchema, {
        inputTokens: big,
        outputTokens: big,
        totalTokens: big,
        inputTokensDetails: { textTokens: big },
      }),
    }));
    expect(result.usage?.inputTokens).toBe(4_294_967_295);
    expect(result.usage?.totalTokens).toBe(4_294_967_295);
    expect(result.usage?.inputTokensDetails?.textTokens).toBe(4_294_967_295);
  });

  it("makes one call when n fits", async () => {
    let calls = 0;
    await fanOut(3, 4, async (count) => {
      calls++;
      return { images: Array.from({ length: count }, (_, i) => image(i)), filtered: 0 };
    });
    expect(calls).toBe(1);
  });

  it("fails the whole request when one chunk fails", async () => {
    const boom = new GatewayError("content_policy", "refused");
    await expect(
      fanOut(2, 1, async (count) => {
        if (count === 1) throw boom;
        return { images: [image(0)], filtered: 0 };
      }),
    ).rejects.toBe(boom);
  });
});

describe("requireImages", () => {
  it("passes a result with images, even when some were filtered", () => {
    const r = { images: [image(1)], filtered: 2 };
    expect(requireImages(r, "Vertex AI")).toBe(r);
  });

  it("turns an all-filtered answer into a content policy refusal", () => {
    expect(() => requireImages({ images: [], filtered: 4 }, "Vertex AI")).toThrow(
      expect.objectContaining({
        kind: "content_policy",
        message: expect.stringContaining("Vertex AI"),
      }),
    );
    expect(() =>
      requireImages({ images: [], filtered: 0 }, "Gemini", "finishReason IMAGE_SAFETY"),
    ).toThrow(
      expect.objectContaining({
        kind: "content_policy",
        message: expect.stringContaining("IMAGE_SAFETY"),
      }),
    );
  });

  it("treats an answer with no images and no refusal as a broken upstream", () => {
    expect(() => requireImages({ images: [], filtered: 0 }, "Bedrock")).toThrow(
      expect.objectContaining({ kind: "upstream", code: "upstream_no_images" }),
    );
  });
});
