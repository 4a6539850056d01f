/**
 * Routing end to end: several deployments, each its own OpenAI emulator, behind one
 * gateway; clients are the OpenAI SDK (REST) and grpc-js.
 */
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { openaiFaults } from "@imagegate/emulators/openai";
import {
  type CreateImageRequestSchema,
  ImageService,
  type ImagesResponseSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { type MultiStack, startMultiStack } from "../support/multi-stack.ts";
import { createClients } from "../support/protocols.ts";

let stack: MultiStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const sdk = (s: MultiStack) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "x", maxRetries: 0 });
const generate = (s: MultiStack, model: string) =>
  sdk(s)
    .images.generate({ model, prompt: "a fox", size: "256x256", response_format: "b64_json" })
    .withResponse();
const served = (s: MultiStack, id: string) => s.upstream[id]!.requests.length;

describe("load balancing", () => {
  it("honours weights over many requests (statistical bound)", async () => {
    stack = await startMultiStack([
      { id: "heavy", group: "g", params: { weight: 3 } },
      { id: "light", group: "g", params: { weight: 1 } },
    ]);
    const N = 400;
    for (let i = 0; i < N; i += 20)
      await Promise.all(Array.from({ length: 20 }, () => generate(stack!, "g")));
    const heavy = served(stack, "heavy") / N;
    // Binomial(400, 0.75): ±5 standard deviations is about ±0.11.
    expect(heavy).toBeGreaterThan(0.64);
    expect(heavy).toBeLessThan(0.86);
    expect(served(stack, "heavy") + served(stack, "light")).toBe(N);
  });
});

describe("retries and cooldowns", () => {
  it("retries a failing deployment's request elsewhere and cools it down, then re-admits it", async () => {
    stack = await startMultiStack(
      [
        { id: "bad", group: "g" },
        { id: "good", group: "g" },
      ],
      "  allowed_fails: 1\n  cooldown_time: 1\n",
    );
    stack.upstream.bad!.faults.push({
      ...openaiFaults.serverError(),
      times: Number.POSITIVE_INFINITY,
    });
    for (let i = 0; i < 10; i++) {
      const { data, response } = await generate(stack, "g");
      expect(data.data).toHaveLength(1);
      expect(response.headers.get("x-imagegate-deployment")).toBe("good");
      expect(Number(response.headers.get("x-imagegate-attempts"))).toBeLessThanOrEqual(2);
    }
    // One failure cooled it: the other nine requests never reached it.
    expect(served(stack, "bad")).toBe(1);

    stack.upstream.bad!.faults.clear();
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 30 && served(stack, "bad") === 1; i++) await generate(stack, "g");
    expect(served(stack, "bad")).toBeGreaterThan(1);
  });

  it("retries a timed-out attempt on another deployment", async () => {
    stack = await startMultiStack([
      { id: "slow", group: "g", params: { timeout: 0.3, order: 1 } },
      { id: "fast", group: "g", params: { order: 2 } },
    ]);
    stack.upstream.slow!.faults.push(openaiFaults.hang());
    const { data, response } = await generate(stack, "g");
    expect(data.data).toHaveLength(1);
    expect(response.headers.get("x-imagegate-deployment")).toBe("fast");
    expect(response.headers.get("x-imagegate-attempts")).toBe("2");
  });

  it("waits for a short Retry-After, and answers 429 + Retry-After for a long one", async () => {
    stack = await startMultiStack([{ id: "only", group: "g" }], "  max_retry_wait: 5\n");
    stack.upstream.only!.faults.push(openaiFaults.rateLimit(1));
    const started = Date.now();
    const { data, response } = await generate(stack, "g");
    expect(data.data).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(response.headers.get("x-imagegate-attempts")).toBe("2");

    stack.upstream.only!.faults.push(openaiFaults.rateLimit(30));
    const err = await generate(stack, "g").catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.headers.get("retry-after")).toBe("30");
    // The deployment rests for the hinted time: the next request is answered at once.
    const again = await generate(stack, "g").catch((e) => e);
    expect(again).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThan(25);
    expect(served(stack, "only")).toBe(3);
  });

  it("answers 429 with Retry-After when every deployment is cooling down, over REST and gRPC", async () => {
    stack = await startMultiStack(
      [
        { id: "a", group: "g" },
        { id: "b", group: "g" },
      ],
      "  allowed_fails: 1\n  cooldown_time: 60\n  num_retries: 1\n",
    );
    for (const id of ["a", "b"])
      stack.upstream[id]!.faults.push({
        ...openaiFaults.serverError(),
        times: Number.POSITIVE_INFINITY,
      });
    const first = await generate(stack, "g").catch((e) => e);
    expect(first).toBeInstanceOf(OpenAI.InternalServerError);
    expect(first.status).toBe(502);
    expect(first.message).toMatch(/\[a\].*\[b\]|\[b\].*\[a\]/);
    expect(first.headers.get("x-should-retry")).toBe("false");

    const err = await generate(stack, "g").catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe("no_deployments_available");
    expect(Number(err.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);

    const grpc = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    try {
      const e = await grpc
        .unary<typeof CreateImageRequestSchema, typeof ImagesResponseSchema>("createImage", {
          prompt: "a fox",
          model: "g",
          size: "256x256",
        })
        .catch((x) => x);
      expect(e.code).toBe(8); // RESOURCE_EXHAUSTED
      expect(e.metadata.get("retry-after")[0]).toMatch(/^\d+$/);
    } finally {
      grpc.close();
    }
  });
});

describe("fallbacks", () => {
  it("falls back in order, reports the group that answered, and skips a group that cannot serve the request", async () => {
    stack = await startMultiStack(
      [
        { id: "primary", group: "hq", model: "dall-e-3" },
        { id: "gpt", group: "gpt", model: "gpt-image-1" },
        { id: "backup", group: "backup", model: "dall-e-3" },
      ],
      "  num_retries: 0\n  fallbacks: [{ hq: [gpt, backup] }]\n",
    );
    stack.upstream.primary!.faults.push(openaiFaults.overloaded());
    const { data, response } = await sdk(stack)
      .images.generate({
        model: "hq",
        prompt: "a fox",
        style: "natural",
        response_format: "b64_json",
      })
      .withResponse();
    expect(data.data).toHaveLength(1);
    expect(response.headers.get("x-imagegate-model")).toBe("backup");
    expect(response.headers.get("x-imagegate-deployment")).toBe("backup");
    expect(served(stack, "gpt")).toBe(0); // gpt-image-1 takes no `style`
    expect(response.headers.get("x-imagegate-attempts")).toBe("2");
  });

  it("returns a safety refusal instead of routing around it", async () => {
    stack = await startMultiStack(
      [
        { id: "primary", group: "hq", model: "dall-e-3" },
        { id: "backup", group: "backup", model: "dall-e-3" },
      ],
      "  fallbacks: [{ hq: [backup] }]\n",
    );
    const err = await sdk(stack)
      .images.generate({ model: "hq", prompt: "something forbidden" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe("content_policy_violation");
    expect(served(stack, "backup")).toBe(0);
  });
});

describe("limits", () => {
  it("skips a deployment at max_parallel_requests instead of queueing", async () => {
    stack = await startMultiStack([
      { id: "narrow", group: "g", params: { max_parallel_requests: 1, order: 1 } },
      { id: "wide", group: "g", params: { order: 2 } },
    ]);
    stack.upstream.narrow!.faults.push(openaiFaults.latency(400));
    const slow = generate(stack, "g");
    await new Promise((r) => setTimeout(r, 100));
    const { response } = await generate(stack, "g");
    expect(response.headers.get("x-imagegate-deployment")).toBe("wide");
    expect((await slow).response.headers.get("x-imagegate-deployment")).toBe("narrow");
  });

  it("keeps a deployment's rpm", async () => {
    stack = await startMultiStack([{ id: "capped", group: "g", params: { rpm: 3 } }]);
    for (let i = 0; i < 3; i++) await generate(stack, "g");
    const err = await generate(stack, "g").catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(err.headers.get("retry-after"))).toBeGreaterThan(50);
    expect(served(stack, "capped")).toBe(3);
  });
});

describe("soak", () => {
  it("answers 2,000 requests at concurrency 64 with 30% upstream faults, each exactly once", async () => {
    stack = await startMultiStack(
      [
        { id: "flaky-1", group: "g" },
        { id: "flaky-2", group: "g" },
        { id: "steady", group: "g" },
      ],
      "  num_retries: 4\n  allowed_fails: 1000\n",
    );
    // Each flaky deployment fails 45% of its calls: about 30% of all upstream calls fail.
    stack.upstream["flaky-1"]!.faults.push({
      ...openaiFaults.serverError(),
      times: Number.POSITIVE_INFINITY,
      probability: 0.45,
    });
    stack.upstream["flaky-2"]!.faults.push({
      ...openaiFaults.overloaded(),
      times: Number.POSITIVE_INFINITY,
      probability: 0.45,
    });
    const client = sdk(stack);
    const ids = new Set<string>();
    let next = 0;
    let failed = 0;
    const worker = async () => {
      while (next < 2000) {
        next += 1;
        const requestId = `soak-${next}`;
        try {
          const { data, response } = await client.images
            .generate(
              { model: "g", prompt: "a fox", size: "256x256", response_format: "b64_json" },
              { headers: { "x-request-id": requestId } },
            )
            .withResponse();
          expect(data.data).toHaveLength(1);
          expect(response.headers.get("x-request-id")).toBe(requestId);
          expect(ids.has(requestId)).toBe(false);
          ids.add(requestId);
        } catch {
          failed += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    expect(failed).toBe(0);
    expect(ids.size).toBe(2000);
    // Exactly one upstream success per request: nothing was answered twice upstream.
    const upstreamCalls = Object.values(stack.upstream).reduce((n, u) => n + u.requests.length, 0);
    const faulted = Object.values(stack.upstream).reduce((n, u) => n + u.faults.applied, 0);
    expect(upstreamCalls - faulted).toBe(2000);
    expect(faulted / upstreamCalls).toBeGreaterThan(0.2);
  }, 120_000);
});

describe.each(["rest", "grpc"] as const)("routing over %s", (protocol) => {
  const call = async (s: MultiStack, body: Record<string, unknown>) => {
    const clients = createClients(s);
    try {
      return await clients.call(protocol, {
        prompt: "a fox",
        size: "256x256",
        response_format: "b64_json",
        ...body,
      });
    } finally {
      clients.close();
    }
  };

  it("retries elsewhere, falls back in order, and reports who answered", async () => {
    stack = await startMultiStack(
      [
        { id: "a", group: "hq" },
        { id: "b", group: "hq" },
        { id: "backup", group: "backup" },
      ],
      "  num_retries: 1\n  allowed_fails: 100\n  fallbacks: [{ hq: [backup] }]\n",
    );
    for (const id of ["a", "b"])
      stack.upstream[id]!.faults.push({
        ...openaiFaults.serverError(),
        times: Number.POSITIVE_INFINITY,
      });
    const outcome = await call(stack, { model: "hq" });
    expect(outcome.ok).toBe(true);
    expect(outcome.headers.get("x-imagegate-model")).toBe("backup");
    expect(outcome.headers.get("x-imagegate-deployment")).toBe("backup");
    expect(outcome.headers.get("x-imagegate-attempts")).toBe("3");
    expect(served(stack, "a") + served(stack, "b")).toBe(2);
  });

  it("returns a refusal without routing around it, and keeps an rpm limit", async () => {
    stack = await startMultiStack(
      [
        { id: "primary", group: "hq", params: { rpm: 2 } },
        { id: "backup", group: "backup" },
      ],
      "  fallbacks: [{ hq: [backup] }]\n",
    );
    const refused = await call(stack, { model: "hq", prompt: "a forbidden fox" });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.code).toBe("content_policy_violation");
    expect(served(stack, "backup")).toBe(0);
    // The refusal used one of the two requests this minute; one more goes to the primary, and
    // then the full group falls back as a failed one would.
    expect((await call(stack, { model: "hq" })).headers.get("x-imagegate-deployment")).toBe(
      "primary",
    );
    const third = await call(stack, { model: "hq" });
    expect(third.ok).toBe(true);
    expect(third.headers.get("x-imagegate-deployment")).toBe("backup");
  });
});
