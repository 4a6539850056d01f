import { clone, create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ImagesResponseSchema, type ImagesResponse } from "../../src/gen/imagegate/v1/images_pb.js";
import { messageToJsonBytes, SPLICE_MIN_BYTES } from "../../src/server/rest-json.ts";

const OPTIONS = { alwaysEmitImplicit: true };

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** What connect-es's JSON serialization writes for the same message. */
function expected(msg: ImagesResponse): string {
  return toJsonString(ImagesResponseSchema, msg, OPTIONS);
}

describe("messageToJsonBytes", () => {
  const cases: Record<string, ImagesResponse> = {
    "one large image": create(ImagesResponseSchema, {
      created: 1,
      data: [{ b64Json: bytes(300_000) }],
    }),
    // Encoded in slices: a length that is not a multiple of 3 pads only at the very end.
    "an image over several slices, padded": create(ImagesResponseSchema, {
      data: [{ b64Json: bytes(100_001, 5) }, { b64Json: bytes(49_153, 6) }],
    }),
    "mixed images, usage with zeros": create(ImagesResponseSchema, {
      created: 1_713_833_628,
      data: [
        {
          b64Json: bytes(SPLICE_MIN_BYTES, 2),
          revisedPrompt: 'a "fox" \u00e9 \ud83e\udd8a \n b64_json',
        },
        { b64Json: bytes(SPLICE_MIN_BYTES - 1, 3) },
        { b64Json: new Uint8Array(0) },
        { url: "https://example.com/x.png" },
        { b64Json: bytes(5000, 4) },
      ],
      size: "1024x1024",
      usage: { inputTokens: 5, inputTokensDetails: { textTokens: 5 } },
    }),
    "no images": create(ImagesResponseSchema, { data: [] }),
    "defaults only": create(ImagesResponseSchema),
  };
  for (const [name, msg] of Object.entries(cases)) {
    it(`writes what toJsonString writes: ${name}`, () => {
      const want = expected(msg);
      const got = messageToJsonBytes(
        ImagesResponseSchema,
        clone(ImagesResponseSchema, msg),
        OPTIONS,
      );
      expect(got.toString("utf8")).toBe(want);
      expect(got.byteLength).toBe(Buffer.byteLength(want));
      // As the REST transcoder uses it: on a message decoded from binary (bytes are views).
      const decoded = fromBinary(ImagesResponseSchema, toBinary(ImagesResponseSchema, msg));
      expect(messageToJsonBytes(ImagesResponseSchema, decoded, OPTIONS).toString("utf8")).toBe(
        want,
      );
    });
  }

  it("keeps zero-valued numbers with alwaysEmitImplicit", () => {
    const msg = create(ImagesResponseSchema, {
      data: [{ b64Json: bytes(2000) }],
      usage: { inputTokensDetails: {} },
    });
    const json = JSON.parse(
      messageToJsonBytes(ImagesResponseSchema, msg, OPTIONS).toString("utf8"),
    );
    expect(json.created).toBe(0);
    expect(json.usage.input_tokens_details.image_tokens).toBe(0);
  });
});
