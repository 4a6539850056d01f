/**
 * Retired models end to end: each provider's "no such model" answer for a model the catalog
 * says is shut down (or that the upstream itself calls retired) reaches the client as the
 * contract's 404 `model_not_found`, naming the successor, over REST and gRPC, through the real
 * adapters and the emulators; the deployment is not cooled down, and a fallback still serves.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bedrockFaults } from "@imagegate/emulators/bedrock";
import { googleFaults } from "@imagegate/emulators/google-images";
import { openaiFaults } from "@imagegate/emulators/openai";
import { type BedrockStack, startBedrockStack } from "../support/bedrock-stack.ts";
import { type GoogleStack, startGoogleStack } from "../support/google-stack.ts";
import { type Clients, Code, createClients, failed, ok } from "../support/protocols.ts";
import { type Stack, startStack } from "../support/stack.ts";

const STICKY = Number.POSITIVE_INFINITY;

describe("OpenAI: a shut-down model", () => {
  let stack: Stack;
  let clients: Clients;
  beforeAll(async () => {
    stack = await startStack({
      yaml: `
model_list:
  - model_name: image-hq
    params: { model: openai/dall-e-3 }
    model_info: { id: openai-dalle3 }
  - model_name: with-fallback
    params: { model: openai/dall-e-3 }
    model_info: { id: openai-dalle3-fb }
  - model_name: successor
    params: { model: openai/gpt-image-2 }
    model_info: { id: openai-gpt-image-2 }
router_settings:
  # Cooldowns as in production: a retired model must not cool its deployment.
  allowed_fails: 1
  cooldown_time: 60
  fallbacks: [{ with-fallback: [successor] }]
`,
    });
    clients = createClients(stack);
  });
  afterAll(async () => {
    clients?.close();
    await stack?.close();
  });
  afterEach(() => stack.openai.faults.clear());

  it.each(["rest", "grpc"] as const)(
    "is a 404 model_not_found naming the successor over %s, every time",
    async (protocol) => {
      stack.openai.faults.push({ ...openaiFaults.modelDeprecated("dall-e-3"), times: STICKY });
      const before = stack.openai.faults.applied;
      for (let i = 0; i < 3; i++) {
        const failure = failed(
          await clients.call(protocol, { model: "image-hq", prompt: "a lighthouse" }),
        );
        if (protocol === "rest") expect(failure.httpStatus).toBe(404);
        else expect(failure.grpcCode).toBe(Code.NotFound);
        expect(failure.type).toBe("invalid_request_error");
        expect(failure.code).toBe("model_not_found");
        expect(failure.param).toBe("model");
        expect(failure.message).toContain("'image-hq' (openai/dall-e-3)");
        expect(failure.message).toContain("shutdown 2026-05-12");
        expect(failure.message).toContain("Its successor is 'openai/gpt-image-2.5-sunburst'");
        // The upstream's own words stay visible.
        expect(failure.message).toContain("has been deprecated");
        expect(failure.headers.get("x-imagegate-cost-usd")).toBe("0");
      }
      // Every request reached the provider: the deployment was never cooled down.
      expect(stack.openai.faults.applied - before).toBe(3);
    },
  );

  it("a fallback still serves the request", async () => {
    stack.openai.faults.push({ ...openaiFaults.modelDeprecated("dall-e-3"), times: STICKY });
    const res = ok(
      await clients.call("rest", { model: "with-fallback", prompt: "a fox", size: "1024x1024" }),
    );
    expect(res.headers.get("x-imagegate-model")).toBe("successor");
    expect(res.headers.get("x-imagegate-attempts")).toBe("2");
  });

  it("an unknown-model 404 from a model without lifecycle data stays the upstream's failure", async () => {
    stack.openai.faults.push({
      status: 404,
      model: "gpt-image-2",
      body: {
        error: {
          message: "The model `gpt-image-2` does not exist or you do not have access to it.",
          type: "invalid_request_error",
          param: null,
          code: "model_not_found",
        },
      },
    });
    const failure = failed(await clients.call("rest", { model: "successor", prompt: "a fox" }));
    expect(failure.httpStatus).toBe(502);
    expect(failure.code).toBe("upstream_not_found");
  });
});

describe("Google: Imagen after its shutdown", () => {
  let google: GoogleStack;
  let clients: Clients;
  beforeAll(async () => {
    google = await startGoogleStack({ yaml: "router_settings: { num_retries: 0 }\n" });
    clients = createClients(google.stack);
  });
  afterAll(async () => {
    clients?.close();
    await google?.close();
  });

  it.each([
    ["gemini", "imagen-4.0-generate-001", "gemini/gemini-nano-banana-2.1"],
    ["vertex_ai", "imagen-4.0-ultra-generate-001", "vertex_ai/gemini-3-pro-image"],
  ] as const)("%s/%s: Google's 404 NOT_FOUND names %s", async (provider, model, successor) => {
    const emulator = provider === "gemini" ? google.gemini : google.vertex;
    emulator.faults.push({ ...googleFaults.modelNotFound(model), times: STICKY });
    try {
      for (const protocol of ["rest", "grpc"] as const) {
        const failure = failed(
          await clients.call(protocol, { model: `${provider}/${model}`, prompt: "a fox" }),
        );
        if (protocol === "rest") expect(failure.httpStatus).toBe(404);
        else expect(failure.grpcCode).toBe(Code.NotFound);
        expect(failure.code).toBe("model_not_found");
        expect(failure.message).toContain(`The model '${provider}/${model}' has been retired`);
        expect(failure.message).toContain("shutdown 2026-08-17");
        expect(failure.message).toContain(`Its successor is '${successor}'`);
      }
    } finally {
      emulator.faults.clear();
    }
  });

  it.each([
    ["gemini", "gemini-nano-banana-2.1", 2048],
    ["gemini", "gemini-3-pro-image", 2048],
    ["vertex_ai", "gemini-3-pro-image", 2048],
    ["vertex_ai", "gemini-3.1-flash-image", 2048],
  ] as const)("the successor %s/%s serves and is priced", async (provider, model, side) => {
    const res = ok(
      await clients.call("rest", {
        model: `${provider}/${model}`,
        prompt: "a fox",
        quality: "hd",
        response_format: "b64_json",
      }),
    );
    expect(res.response.data).toHaveLength(1);
    expect(res.response.size).toBe(`${side}x${side}`);
    expect(Number(res.headers.get("x-imagegate-cost-usd"))).toBeGreaterThan(0);
  });
});

describe("Bedrock: end of life and Legacy", () => {
  let bedrock: BedrockStack;
  let clients: Clients;
  beforeAll(async () => {
    bedrock = await startBedrockStack({ yaml: "router_settings: { num_retries: 0 }\n" });
    clients = createClients(bedrock.stack);
  });
  afterAll(async () => {
    clients?.close();
    await bedrock?.close();
  });
  afterEach(() => bedrock.bedrock.faults.clear());

  it("Titan v2 past its end of life: a 404 saying no successor is known", async () => {
    bedrock.bedrock.faults.push(bedrockFaults.resourceNotFound());
    const failure = failed(
      await clients.call("grpc", {
        model: "bedrock/amazon.titan-image-generator-v2:0",
        prompt: "a fox",
      }),
    );
    expect(failure.grpcCode).toBe(Code.NotFound);
    expect(failure.code).toBe("model_not_found");
    expect(failure.message).toContain("shutdown 2026-06-30");
    expect(failure.message).toContain("The catalog names no successor");
    expect(failure.message).toContain("reached the end of its life");
  });

  it("a Legacy answer for a model without lifecycle data is still the client's 404", async () => {
    bedrock.bedrock.faults.push(bedrockFaults.legacyModel());
    const failure = failed(
      await clients.call("rest", { model: "bedrock/stability.sd3-5-large-v1:0", prompt: "a fox" }),
    );
    expect(failure.httpStatus).toBe(404);
    expect(failure.code).toBe("model_not_found");
    expect(failure.message).toContain("'bedrock/stability.sd3-5-large-v1:0' has been retired");
    expect(failure.message).toContain("marked by provider as Legacy");
  });
});
