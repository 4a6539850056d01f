/**
 * Bedrock end to end, through the OpenAI SDK (REST) and grpc-js: every model family against
 * the Bedrock emulator (which checks each request's SigV4 signature), the size and quality
 * mappings, n fan-out, refusals in each family's shape, throttling, upstream errors, auth
 * failures, session tokens, and the 400s for what Bedrock cannot take.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type BedrockEmulator, bedrockFaults } from "@imagegate/emulators/bedrock";
import { pngSize } from "@imagegate/emulators/png";
import {
  AWS_TEMP_CREDENTIALS,
  AWS_TEST_CREDENTIALS,
  type BedrockStack,
  startBedrockStack,
} from "../support/bedrock-stack.ts";
import { type Clients, Code, createClients, failed, ok } from "../support/protocols.ts";

const WRONG_SECRET = "wrong/secret/for+the+emulator/000000000000";

const YAML = `
model_list:
  - model_name: sdxl-bad-secret
    params:
      model: bedrock/stability.stable-diffusion-xl-v1
      aws_access_key_id: ${AWS_TEST_CREDENTIALS.accessKeyId}
      aws_secret_access_key: ${WRONG_SECRET}
    model_info:
      id: bedrock-bad-secret
  - model_name: nova-unknown-key
    params:
      model: bedrock/amazon.nova-canvas-v1:0
      aws_access_key_id: AKIAUNKNOWNKEY000000X
      aws_secret_access_key: ${AWS_TEST_CREDENTIALS.secretAccessKey}
    model_info:
      id: bedrock-unknown-key
  - model_name: titan-temporary
    params:
      model: bedrock/amazon.titan-image-generator-v1
      aws_access_key_id: ${AWS_TEMP_CREDENTIALS.accessKeyId}
      aws_secret_access_key: ${AWS_TEMP_CREDENTIALS.secretAccessKey}
      aws_session_token: ${AWS_TEMP_CREDENTIALS.sessionToken}
    model_info:
      id: bedrock-temporary
  - model_name: titan-temporary-no-token
    params:
      model: bedrock/amazon.titan-image-generator-v1
      aws_access_key_id: ${AWS_TEMP_CREDENTIALS.accessKeyId}
      aws_secret_access_key: ${AWS_TEMP_CREDENTIALS.secretAccessKey}
    model_info:
      id: bedrock-temporary-no-token
  - model_name: sd3-slow
    params:
      model: bedrock/stability.sd3-large-v1:0
      timeout: 0.3
    model_info:
      id: bedrock-slow
router_settings:
  # One attempt per request: each queued fault decides its request's outcome.
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
`;

let stack: BedrockStack;
let bedrock: BedrockEmulator;
let clients: Clients;
beforeAll(async () => {
  stack = await startBedrockStack({ yaml: YAML });
  bedrock = stack.bedrock;
  clients = createClients(stack.stack);
});
afterAll(async () => {
  clients?.close();
  await stack?.close();
});
afterEach(() => {
  bedrock.faults.clear();
});

/** Upstream bodies the emulator received since `from`. */
function upstreamBodies(from: number): Array<Record<string, unknown>> {
  return bedrock.requests.slice(from).map((r) => r.body as Record<string, unknown>);
}

const PROTOCOLS = ["rest", "grpc"] as const;

interface FamilyCase {
  model: string;
  body: Record<string, unknown>;
  produced: string;
  cost: number;
}

const FAMILY_CASES: FamilyCase[] = [
  {
    model: "bedrock/stability.stable-diffusion-xl-v0",
    body: {},
    produced: "1024x1024",
    cost: 0.04,
  },
  {
    model: "bedrock/stability.stable-diffusion-xl-v1",
    body: { size: "1792x1024", style: "cinematic" },
    produced: "1344x768",
    cost: 0.04,
  },
  {
    model: "bedrock/stability.sd3-large-v1:0",
    body: { size: "1024x1536" },
    produced: "832x1216",
    cost: 0.08,
  },
  {
    model: "bedrock/stability.sd3-5-large-v1:0",
    body: { aspect_ratio: "21:9", negative_prompt: "fog" },
    produced: "1536x640",
    cost: 0.08,
  },
  {
    model: "bedrock/stability.stable-image-ultra-v1:0",
    body: {},
    produced: "1024x1024",
    cost: 0.14,
  },
  {
    model: "bedrock/stability.stable-image-ultra-v1:1",
    body: { size: "1536x1024" },
    produced: "1216x832",
    cost: 0.14,
  },
  {
    model: "bedrock/stability.stable-image-core-v1:0",
    body: { seed: 42 },
    produced: "1024x1024",
    cost: 0.04,
  },
  {
    model: "bedrock/stability.stable-image-core-v1:1",
    body: { size: "1024x1792" },
    produced: "768x1344",
    cost: 0.04,
  },
  {
    model: "bedrock/amazon.titan-image-generator-v1",
    body: { size: "1536x1024" },
    produced: "1152x768",
    cost: 0.01,
  },
  {
    model: "bedrock/amazon.titan-image-generator-v2:0",
    body: { size: "256x256", quality: "hd" },
    produced: "512x512",
    cost: 0.01,
  },
  {
    model: "bedrock/amazon.nova-canvas-v1:0",
    body: { size: "256x256" },
    produced: "320x320",
    cost: 0.04,
  },
  {
    model: "bedrock/amazon.nova-canvas-v1:0",
    body: { size: "2048x1024", quality: "high", style: "PHOTOREALISM" },
    produced: "2048x1024",
    cost: 0.08,
  },
];

describe.each(PROTOCOLS)("Bedrock over %s", (protocol) => {
  it.each(FAMILY_CASES)(
    "$model $body → a PNG of $produced",
    async ({ model, body, produced, cost }) => {
      const { response, headers } = ok(
        await clients.call(protocol, { model, prompt: "a lighthouse at dusk", ...body }),
      );
      const [width, height] = produced.split("x").map(Number);
      expect(response.data).toHaveLength(1);
      expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width, height });
      expect(response.size).toBe(produced);
      expect(headers.get("x-imagegate-model")).toBe(model);
      expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(cost, 10);
      expect(bedrock.requests.at(-1)!.modelId).toBe(model.slice("bedrock/".length));
    },
  );

  it("SDXL with n=3 fans out into three calls with seeds seed, seed+1, seed+2", async () => {
    const from = bedrock.requests.length;
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "bedrock/stability.stable-diffusion-xl-v1",
        prompt: "three foxes",
        n: 3,
        seed: 10,
        negative_prompt: "blur",
      }),
    );
    expect(response.data).toHaveLength(3);
    const bodies = upstreamBodies(from);
    expect(bodies.map((b) => b.seed).sort()).toEqual([10, 11, 12]);
    expect(bodies[0]).toMatchObject({
      text_prompts: [
        { text: "three foxes", weight: 1 },
        { text: "blur", weight: -1 },
      ],
      width: 1024,
      height: 1024,
      samples: 1,
    });
    expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.12, 10);
  });

  it("Titan with n=7 sends numberOfImages 5 and 2, with distinct seeds", async () => {
    const from = bedrock.requests.length;
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "bedrock/amazon.titan-image-generator-v2:0",
        prompt: "seven owls",
        n: 7,
        quality: "hd",
      }),
    );
    expect(response.data).toHaveLength(7);
    for (const image of response.data)
      expect(pngSize(image.b64Json!)).toEqual({ width: 1024, height: 1024 });
    const configs = upstreamBodies(from).map(
      (b) => b.imageGenerationConfig as Record<string, unknown>,
    );
    expect(configs.map((c) => c.numberOfImages).sort()).toEqual([2, 5]);
    expect(configs.every((c) => c.quality === "premium")).toBe(true);
    expect(new Set(configs.map((c) => c.seed)).size).toBe(2);
    expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(7 * 0.012, 10);
  });

  it("SD3 with n=2 makes two one-image calls", async () => {
    const from = bedrock.requests.length;
    const { response } = ok(
      await clients.call(protocol, {
        model: "bedrock/stability.sd3-large-v1:0",
        prompt: "two boats",
        n: 2,
        output_format: "jpeg",
      }),
    );
    expect(response.data).toHaveLength(2);
    expect(upstreamBodies(from)).toEqual([
      { prompt: "two boats", aspect_ratio: "1:1", output_format: "jpeg" },
      { prompt: "two boats", aspect_ratio: "1:1", output_format: "jpeg" },
    ]);
    expect(response.outputFormat).toBe("jpeg");
  });

  it.each([
    ["bedrock/stability.stable-diffusion-xl-v1", { n: 2 }],
    ["bedrock/stability.stable-image-core-v1:1", {}],
    ["bedrock/amazon.titan-image-generator-v1", { n: 3 }],
    ["bedrock/amazon.nova-canvas-v1:0", {}],
    // No partial refusal on Bedrock: a partly-forbidden prompt is refused whole.
    ["bedrock/amazon.nova-canvas-v1:0", { n: 2, prompt: "a partly-forbidden scene" }],
  ])(
    "%s refuses a forbidden prompt as content_policy_violation, at no cost",
    async (model, extra) => {
      const failure = failed(
        await clients.call(protocol, { model, prompt: "something forbidden", ...extra }),
      );
      expect(failure.code).toBe("content_policy_violation");
      if (protocol === "rest") expect(failure.httpStatus).toBe(400);
      else expect(failure.grpcCode).toBe(Code.InvalidArgument);
      expect(failure.headers.get("x-imagegate-cost-usd")).toBe("0");
    },
  );

  it("throttling is a 429 rate_limit_error", async () => {
    bedrock.faults.push(bedrockFaults.throttling());
    const failure = failed(
      await clients.call(protocol, { model: "bedrock/amazon.nova-canvas-v1:0", prompt: "x" }),
    );
    if (protocol === "rest")
      expect([failure.httpStatus, failure.type]).toEqual([429, "rate_limit_error"]);
    else expect(failure.grpcCode).toBe(Code.ResourceExhausted);
    expect(failure.message).toContain("ThrottlingException");
    // Bedrock gives no hint; a Retry-After, if any, is the gateway's own backoff.
    const retryAfter = failure.headers.get("retry-after");
    if (retryAfter !== null) expect(Number(retryAfter)).toBeGreaterThanOrEqual(0);
  });

  it("a wrong secret is the gateway's problem: 502 upstream_auth_failed, secret never shown", async () => {
    const failure = failed(await clients.call(protocol, { model: "sdxl-bad-secret", prompt: "x" }));
    expect(failure.code).toBe("upstream_auth_failed");
    if (protocol === "rest") expect(failure.httpStatus).toBe(502);
    else expect(failure.grpcCode).toBe(Code.Unavailable);
    expect(failure.message).toContain("InvalidSignatureException");
    const everything = `${failure.message} ${JSON.stringify(failure.body ?? {})} ${[...failure.headers.values()].join(" ")}`;
    expect(everything).not.toContain(WRONG_SECRET);
    expect(everything).not.toContain(AWS_TEST_CREDENTIALS.secretAccessKey);
    expect(everything).not.toMatch(/Signature=[0-9a-f]{64}/);
  });

  it("an unknown access key is 502 upstream_auth_failed (UnrecognizedClientException)", async () => {
    const failure = failed(
      await clients.call(protocol, { model: "nova-unknown-key", prompt: "x" }),
    );
    expect(failure.code).toBe("upstream_auth_failed");
    expect(failure.message).toContain("UnrecognizedClientException");
  });

  it("temporary credentials work with their session token, and fail without it", async () => {
    const { response } = ok(
      await clients.call(protocol, { model: "titan-temporary", prompt: "a fox" }),
    );
    expect(response.data).toHaveLength(1);
    expect(bedrock.requests.at(-1)!.headers["x-amz-security-token"]).toBe(
      AWS_TEMP_CREDENTIALS.sessionToken,
    );
    const failure = failed(
      await clients.call(protocol, { model: "titan-temporary-no-token", prompt: "a fox" }),
    );
    expect(failure.code).toBe("upstream_auth_failed");
    expect(failure.message).not.toContain(AWS_TEMP_CREDENTIALS.sessionToken);
  });
});

describe("a partly filtered fan-out", () => {
  it("returns the surviving images and charges only them", async () => {
    // The emulator's prompt trigger refuses every call alike; a fault filters just one.
    bedrock.faults.push({
      status: 200,
      body: {
        result: "success",
        artifacts: [{ seed: 1, base64: "", finishReason: "CONTENT_FILTERED" }],
      },
      model: "stability.stable-diffusion-xl-v1",
    });
    const { response, headers } = ok(
      await clients.call("rest", {
        model: "bedrock/stability.stable-diffusion-xl-v1",
        prompt: "three cats",
        n: 3,
      }),
    );
    expect(response.data).toHaveLength(2);
    expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.08, 10);
  });
});

describe("what Bedrock cannot take is a 400 naming the field, before any upstream call", () => {
  it.each([
    ["bedrock/stability.stable-diffusion-xl-v1", { quality: "hd" }, "quality"],
    ["bedrock/stability.stable-diffusion-xl-v1", { size: "1000x1000" }, "size"],
    ["bedrock/stability.stable-diffusion-xl-v1", { style: "vivid" }, "style"],
    ["bedrock/stability.sd3-large-v1:0", { style: "anime" }, "style"],
    [
      "bedrock/stability.sd3-large-v1:0",
      { size: "1792x1024", aspect_ratio: "16:9" },
      "aspect_ratio",
    ],
    ["bedrock/stability.sd3-large-v1:0", { seed: 4294967295 }, "seed"],
    ["bedrock/amazon.titan-image-generator-v1", { aspect_ratio: "1:1" }, "aspect_ratio"],
    ["bedrock/amazon.titan-image-generator-v1", { size: "2048x2048" }, "size"],
    ["bedrock/amazon.titan-image-generator-v1", { prompt: "x".repeat(513) }, "prompt"],
    ["bedrock/amazon.titan-image-generator-v2:0", { style: "PHOTOREALISM" }, "style"],
    ["bedrock/amazon.nova-canvas-v1:0", { seed: 858993460 }, "seed"],
    ["bedrock/amazon.nova-canvas-v1:0", { size: "4096x512" }, "size"],
    ["bedrock/amazon.nova-canvas-v1:0", { user: "someone" }, "user"],
    ["bedrock/amazon.nova-canvas-v1:0", { n: 11 }, "n"],
    ["bedrock/amazon.nova-canvas-v1:0", { background: "transparent" }, "background"],
  ])("%s %j → param %s", async (model, extra, param) => {
    const from = bedrock.requests.length;
    for (const protocol of PROTOCOLS) {
      const failure = failed(await clients.call(protocol, { model, prompt: "a fox", ...extra }));
      expect(failure.param).toBe(param);
      if (protocol === "rest")
        expect([failure.httpStatus, failure.type]).toEqual([400, "invalid_request_error"]);
      else expect(failure.grpcCode).toBe(Code.InvalidArgument);
    }
    expect(bedrock.requests.length).toBe(from);
  });
});

describe("upstream errors", () => {
  it.each([
    ["ServiceUnavailableException", bedrockFaults.serviceUnavailable(), 503, "server_error"],
    ["InternalServerException", bedrockFaults.internalServer(), 502, "server_error"],
    ["ModelErrorException", bedrockFaults.modelError(), 502, "server_error"],
    ["ResourceNotFoundException", bedrockFaults.modelNotFound(), 502, "server_error"],
    // Past its end of life: the client's 404 (test/e2e/lifecycle.test.ts).
    ["ResourceNotFoundException", bedrockFaults.resourceNotFound(), 404, "invalid_request_error"],
    ["AccessDeniedException", bedrockFaults.accessDenied(), 502, "server_error"],
    ["ModelTimeoutException", bedrockFaults.modelTimeout(), 504, "server_error"],
    ["ModelNotReadyException", bedrockFaults.modelNotReady(), 429, "rate_limit_error"],
  ])("%s → %i %s", async (name, fault, status, type) => {
    bedrock.faults.push(fault);
    const failure = failed(
      await clients.call("rest", { model: "bedrock/stability.sd3-5-large-v1:0", prompt: "x" }),
    );
    expect([failure.httpStatus, failure.type]).toEqual([status, type]);
    expect(failure.message).toContain(name);
    if (name === "AccessDeniedException") expect(failure.code).toBe("upstream_auth_failed");
    if (name === "ModelTimeoutException") expect(failure.code).toBe("timeout");
  });

  it("a ValidationException the gateway let through is a 400 naming the field", async () => {
    bedrock.faults.push({
      status: 400,
      headers: {
        "x-amzn-errortype":
          "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
      },
      body: {
        message:
          "Malformed input request: #/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5, please reformat your input and try again.",
      },
    });
    const failure = failed(
      await clients.call("rest", { model: "bedrock/amazon.nova-canvas-v1:0", prompt: "x" }),
    );
    expect([failure.httpStatus, failure.type, failure.param]).toEqual([
      400,
      "invalid_request_error",
      "n",
    ]);
  });

  it("a malformed 200 is 502 upstream_malformed_response", async () => {
    bedrock.faults.push(bedrockFaults.malformed());
    const failure = failed(
      await clients.call("rest", { model: "bedrock/amazon.titan-image-generator-v1", prompt: "x" }),
    );
    expect([failure.httpStatus, failure.code]).toEqual([502, "upstream_malformed_response"]);
  });

  it("a hanging upstream past the deployment's timeout is 504", async () => {
    bedrock.faults.push(bedrockFaults.hang());
    const failure = failed(await clients.call("rest", { model: "sd3-slow", prompt: "x" }));
    expect([failure.httpStatus, failure.code]).toEqual([504, "timeout"]);
  });
});
