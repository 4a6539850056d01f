import type { DescMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/errors.ts";
import { HttpRuleSchema } from "../../src/gen/google/api/http_pb.js";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { checkJsonBody } from "../../src/server/json-check.ts";

function check(value: unknown, desc: DescMessage = CreateImageRequestSchema): void {
  checkJsonBody(desc, value);
}

/** The 400 `value` is rejected with; fails the test if it passes or throws anything else. */
function rejection(value: unknown, desc: DescMessage = CreateImageRequestSchema): GatewayError {
  try {
    check(value, desc);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    const err = e as GatewayError;
    expect(err.kind).toBe("invalid_request");
    return err;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
}

const FULL = {
  prompt: "a red fox",
  model: "gpt-image-1",
  n: 2,
  quality: "high",
  response_format: "b64_json",
  size: "1024x1024",
  style: "vivid",
  user: "u-1",
  background: "transparent",
  moderation: "low",
  output_format: "png",
  output_compression: 100,
  stream: false,
  partial_images: 0,
  safety_identifier: "sid",
  negative_prompt: "blur",
  seed: 4294967295,
  aspect_ratio: "16:9",
};

describe("checkJsonBody(CreateImageRequest)", () => {
  it("accepts every field with the right type", () => {
    expect(() => check(FULL)).not.toThrow();
    expect(() => check({})).not.toThrow();
    expect(() => check({ prompt: "" })).not.toThrow();
  });

  it("accepts null for every field, as the OpenAI SDK may send", () => {
    const nulls = Object.fromEntries(Object.keys(FULL).map((k) => [k, null]));
    expect(() => check(nulls)).not.toThrow();
  });

  it("rejects an unknown key, naming it", () => {
    const e = rejection({ prompt: "x", promt: "y" });
    expect(e.param).toBe("promt");
    expect(e.message).toBe("Unrecognized request argument supplied: promt");
  });

  it("rejects a camelCase spelling, which is neither the JSON nor the proto name", () => {
    expect(rejection({ prompt: "x", responseFormat: "url" }).param).toBe("responseFormat");
    expect(rejection({ prompt: "x", outputFormat: "png" }).param).toBe("outputFormat");
  });

  it.each([
    ["prompt", 42, "a string", "an integer"],
    ["prompt", ["a", "b"], "a string", "an array"],
    ["model", { name: "dall-e-3" }, "a string", "an object"],
    ["size", 1024, "a string", "an integer"],
    ["response_format", true, "a string", "a boolean"],
    ["n", "2", "an integer", "a string"],
    ["n", 1.5, "an integer", "a decimal"],
    ["n", true, "an integer", "a boolean"],
    ["output_compression", [80], "an integer", "an array"],
    ["seed", 0.25, "an integer", "a decimal"],
    ["partial_images", "1", "an integer", "a string"],
    ["stream", "true", "a boolean", "a string"],
    ["stream", 1, "a boolean", "an integer"],
  ])("rejects %s = %j with an OpenAI-style type message", (field, value, expected, got) => {
    const e = rejection({ prompt: "x", [field]: value });
    expect(e.param).toBe(field);
    expect(e.message).toBe(
      `Invalid type for '${field}': expected ${expected}, but got ${got} instead.`,
    );
  });

  it("checks the int32 range", () => {
    expect(() => check({ n: 2147483647 })).not.toThrow();
    expect(() => check({ n: -2147483648 })).not.toThrow();

    const above = rejection({ n: 2147483648 });
    expect(above.param).toBe("n");
    expect(above.message).toBe(
      "Invalid 'n': integer above maximum value. Expected a value <= 2147483647, but got 2147483648 instead.",
    );
    const below = rejection({ output_compression: -2147483649 });
    expect(below.param).toBe("output_compression");
    expect(below.message).toMatch(/below minimum value/);
  });

  it("checks the uint32 range", () => {
    expect(() => check({ seed: 0 })).not.toThrow();
    expect(() => check({ seed: 4294967295 })).not.toThrow();

    const negative = rejection({ seed: -1 });
    expect(negative.param).toBe("seed");
    expect(negative.message).toBe(
      "Invalid 'seed': integer below minimum value. Expected a value >= 0, but got -1 instead.",
    );
    const above = rejection({ seed: 4294967296 });
    expect(above.param).toBe("seed");
    expect(above.message).toMatch(/above maximum value/);
  });

  it("treats an integral number written with a fraction as an integer", () => {
    // JSON.parse("2.0") is the number 2: nothing tells it from "2".
    expect(() => check(JSON.parse('{"n": 2.0}'))).not.toThrow();
    expect(rejection(JSON.parse('{"n": 2.5}')).param).toBe("n");
  });

  it.each([
    [null, "null"],
    [[{ prompt: "x" }], "an array"],
    ["a red fox", "a string"],
    [7, "an integer"],
    [true, "a boolean"],
  ])("rejects a body that is %j, saying what it got", (value, got) => {
    const e = rejection(value);
    expect(e.param).toBeUndefined();
    expect(e.message).toBe(`The request body must be a JSON object, but got ${got}.`);
  });
});

describe("checkJsonBody: JSON and proto names, nested messages and lists", () => {
  // google.api.HttpRule has fields whose JSON name differs from the proto name
  // (response_body / responseBody), a message field and a repeated message field.
  it("accepts both the JSON name and the proto name", () => {
    expect(() => check({ responseBody: "x" }, HttpRuleSchema)).not.toThrow();
    expect(() => check({ response_body: "x" }, HttpRuleSchema)).not.toThrow();
    expect(() => check({ additionalBindings: [] }, HttpRuleSchema)).not.toThrow();
    expect(() => check({ additional_bindings: [{ get: "/v1/x" }] }, HttpRuleSchema)).not.toThrow();
  });

  it("names fields inside nested messages and lists", () => {
    expect(rejection({ custom: { kind: "HEAD", pathh: "/" } }, HttpRuleSchema).param).toBe(
      "custom.pathh",
    );
    expect(rejection({ custom: { kind: 1 } }, HttpRuleSchema).param).toBe("custom.kind");
    expect(rejection({ custom: "HEAD /" }, HttpRuleSchema).message).toBe(
      "Invalid type for 'custom': expected an object, but got a string instead.",
    );
    const inList = rejection({ additional_bindings: [{ get: "/a" }, { get: 5 }] }, HttpRuleSchema);
    expect(inList.param).toBe("additional_bindings[1].get");
    expect(rejection({ additional_bindings: [{ get: "/a" }, "b"] }, HttpRuleSchema).param).toBe(
      "additional_bindings[1]",
    );
    expect(rejection({ additional_bindings: { get: "/a" } }, HttpRuleSchema).message).toBe(
      "Invalid type for 'additional_bindings': expected an array, but got an object instead.",
    );
  });
});
