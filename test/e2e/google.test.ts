/**
 * Google AI Studio (`gemini/…`) and Vertex AI (`vertex_ai/…`) end to end: the OpenAI SDK
 * (REST) and grpc-js against the gateway and the two emulators. Every family (Imagen and
 * Gemini image on each API): PNGs of the produced size, the size and quality tables, n
 * fan-out, refusals (full and partial, charged only for survivors), throttling with the
 * RetryInfo hint, refused credentials (502 upstream_auth_failed), 400s naming the field,
 * and one Vertex token shared by concurrent requests.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { googleFaults } from "@imagegate/emulators/google-images";
import { pngSize } from "@imagegate/emulators/png";
import {
  type Clients,
  Code,
  createClients,
  failed,
  ok,
  type Success,
} from "../support/protocols.ts";
import {
  GEMINI_TEST_KEY,
  type GoogleStack,
  startGoogleStack,
  VERTEX_TEST_LOCATION,
  VERTEX_TEST_PROJECT,
} from "../support/google-stack.ts";

const PROTOCOLS = ["rest", "grpc"] as const;

const YAML = `
model_list:
  - model_name: gemini-bad-key
    params: { model: gemini/imagen-4.0-generate-001, api_key: AIza-not-the-right-key-7731 }
  - model_name: vertex-bad-key
    params: { model: vertex_ai/imagegeneration@006, vertex_credentials: os.environ/BAD_VERTEX_CREDENTIALS }
${PROTOCOLS.map(
  (p) => `  - model_name: gemini-limited-${p}
    params: { model: gemini/imagen-4.0-fast-generate-001 }
  - model_name: vertex-limited-${p}
    params: { model: vertex_ai/imagen-3.0-fast-generate-001 }`,
).join("\n")}
router_settings:
  # One attempt per request: each queued fault decides its request's outcome.
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
`;

let google: GoogleStack;
let clients: Clients;
beforeAll(async () => {
  google = await startGoogleStack({ yaml: YAML });
  clients = createClients(google.stack);
});
afterAll(async () => {
  clients?.close();
  await google?.close();
});
afterEach(() => {
  google.gemini.faults.clear();
  google.vertex.faults.clear();
});

/** Upstream model calls (not token exchanges) made while `run` ran. */
async function upstreamCalls(run: () => Promise<unknown>) {
  const g = google.gemini.requests.length;
  const v = google.vertex.requests.length;
  await run();
  return [
    ...google.gemini.requests.slice(g),
    ...google.vertex.requests.slice(v).filter((r) => r.path !== "/token"),
  ];
}

const cost = (headers: Headers) => Number(headers.get("x-imagegate-cost-usd"));

describe.each(PROTOCOLS)("Google over %s", (protocol) => {
  const call = (body: Record<string, unknown>) => clients.call(protocol, body);

  describe("every family returns PNGs of the produced size", () => {
    it("AI Studio Imagen 4: 1792x1024 → 16:9 at 1408x768, $0.04", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(
          await call({
            model: "gemini/imagen-4.0-generate-001",
            prompt: "a lighthouse at dusk",
            size: "1792x1024",
          }),
        );
      });
      expect(res.response.size).toBe("1408x768");
      expect(res.response.data).toHaveLength(1);
      expect(pngSize(res.response.data[0]!.b64Json!)).toEqual({ width: 1408, height: 768 });
      expect(res.headers.get("x-imagegate-model")).toBe("gemini/imagen-4.0-generate-001");
      expect(cost(res.headers)).toBeCloseTo(0.04, 10);
      expect(calls).toHaveLength(1);
      expect(calls[0]!.headers["x-goog-api-key"]).toBe(GEMINI_TEST_KEY);
      expect(calls[0]!.body).toEqual({
        instances: [{ prompt: "a lighthouse at dusk" }],
        parameters: { sampleCount: 1, aspectRatio: "16:9", includeRaiReason: true },
      });
    });

    it("AI Studio Gemini 2.5 Flash Image: usage reported and billed by tokens", async () => {
      const res = ok(
        await call({
          model: "gemini/gemini-2.5-flash-image",
          prompt: "a lighthouse at dusk",
          size: "1024x1536",
        }),
      );
      expect(res.response.size).toBe("832x1248");
      expect(pngSize(res.response.data[0]!.b64Json!)).toEqual({ width: 832, height: 1248 });
      const usage = res.response.usage!;
      expect(usage.outputTokensDetails?.imageTokens).toBe(1290);
      expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
      // promptTokenCount × $0.30/M + candidate tokens × $30/M
      expect(cost(res.headers)).toBeCloseTo(
        (usage.inputTokens * 0.3 + usage.outputTokens * 30) / 1e6,
        6,
      );
    });

    it("AI Studio Gemini 3 Pro: quality hd → imageSize 2K", async () => {
      const res = ok(
        await call({
          model: "gemini/gemini-3-pro-image-preview",
          prompt: "a lighthouse",
          quality: "hd",
          size: "1536x1024",
        }),
      );
      expect(res.response.size).toBe("2528x1696");
      expect(pngSize(res.response.data[0]!.b64Json!)).toEqual({ width: 2528, height: 1696 });
      expect(res.response.usage?.outputTokensDetails?.imageTokens).toBe(1120);
    });

    it("Vertex imagegeneration@006 with seed and negative_prompt: addWatermark off, bearer token", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(
          await call({
            model: "vertex_ai/imagegeneration@006",
            prompt: "a lighthouse",
            seed: 1234,
            negative_prompt: "people",
          }),
        );
      });
      expect(res.response.size).toBe("1024x1024");
      expect(pngSize(res.response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
      expect(cost(res.headers)).toBeCloseTo(0.02, 10);
      expect(calls[0]!.path).toBe(
        `/v1/projects/${VERTEX_TEST_PROJECT}/locations/${VERTEX_TEST_LOCATION}/publishers/google/models/imagegeneration@006:predict`,
      );
      expect(calls[0]!.headers.authorization).toMatch(/^Bearer ya29\./);
      expect(calls[0]!.body).toMatchObject({
        parameters: { sampleCount: 1, seed: 1234, addWatermark: false, negativePrompt: "people" },
      });
    });

    it("Vertex Imagen 4 Ultra: quality hd → 2K, n=2 → two one-image calls", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(
          await call({
            model: "vertex_ai/imagen-4.0-ultra-generate-001",
            prompt: "a lighthouse",
            quality: "hd",
            n: 2,
          }),
        );
      });
      expect(res.response.data).toHaveLength(2);
      expect(res.response.size).toBe("2048x2048");
      for (const img of res.response.data)
        expect(pngSize(img.b64Json!)).toEqual({ width: 2048, height: 2048 });
      expect(calls.map((c) => (c.body as { parameters: object }).parameters)).toEqual([
        { sampleCount: 1, aspectRatio: "1:1", sampleImageSize: "2K", includeRaiReason: true },
        { sampleCount: 1, aspectRatio: "1:1", sampleImageSize: "2K", includeRaiReason: true },
      ]);
      expect(cost(res.headers)).toBeCloseTo(0.12, 10);
    });

    it("Vertex Gemini 2.5 Flash Image with aspect_ratio 21:9", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(
          await call({
            model: "vertex_ai/gemini-2.5-flash-image",
            prompt: "a wide harbour",
            aspect_ratio: "21:9",
          }),
        );
      });
      expect(res.response.size).toBe("1536x672");
      expect(pngSize(res.response.data[0]!.b64Json!)).toEqual({ width: 1536, height: 672 });
      expect(calls[0]!.path).toMatch(/models\/gemini-2\.5-flash-image:generateContent$/);
      expect(calls[0]!.body).toMatchObject({
        generationConfig: {
          responseModalities: ["TEXT", "IMAGE"],
          imageConfig: { aspectRatio: "21:9" },
        },
      });
    });
  });

  describe("the size table (docs/providers/gemini.md)", () => {
    it.each([
      ["256x256", "1024x1024", "1024x1024"],
      ["1024x1024", "1024x1024", "1024x1024"],
      ["1792x1024", "1408x768", "1344x768"],
      ["1024x1792", "768x1408", "768x1344"],
      ["1536x1024", "1280x896", "1248x832"],
      ["1024x1536", "896x1280", "832x1248"],
    ])("%s → Imagen %s, Gemini %s", async (size, imagen, gemini) => {
      const a = ok(
        await call({ model: "vertex_ai/imagen-3.0-generate-002", prompt: "a fox", size }),
      );
      const b = ok(await call({ model: "gemini/gemini-2.5-flash-image", prompt: "a fox", size }));
      const dims = (s: string) => {
        const [width, height] = s.split("x").map(Number);
        return { width, height };
      };
      expect(a.response.size).toBe(imagen);
      expect(pngSize(a.response.data[0]!.b64Json!)).toEqual(dims(imagen));
      expect(b.response.size).toBe(gemini);
      expect(pngSize(b.response.data[0]!.b64Json!)).toEqual(dims(gemini));
    });
  });

  describe("n fan-out", () => {
    it("Imagen n=6 → sampleCount 4 + 2, six images, six charged", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(
          await call({ model: "gemini/imagen-4.0-fast-generate-001", prompt: "foxes", n: 6 }),
        );
      });
      expect(res.response.data).toHaveLength(6);
      expect(
        calls
          .map((c) => (c.body as { parameters: { sampleCount: number } }).parameters.sampleCount)
          .sort(),
      ).toEqual([2, 4]);
      expect(cost(res.headers)).toBeCloseTo(0.12, 10);
    });

    it("Gemini n=3 → three calls", async () => {
      let res!: Success;
      const calls = await upstreamCalls(async () => {
        res = ok(await call({ model: "vertex_ai/gemini-2.5-flash-image", prompt: "foxes", n: 3 }));
      });
      expect(res.response.data).toHaveLength(3);
      expect(calls).toHaveLength(3);
      expect(res.response.usage?.outputTokensDetails?.imageTokens).toBe(3 * 1290);
    });
  });

  describe("refusals", () => {
    it.each([
      ["vertex_ai/imagegeneration@006", "a forbidden lighthouse", "sensitive words"],
      [
        "vertex_ai/imagen-4.0-generate-001",
        "a forbidden-image lighthouse",
        "All images were filtered out",
      ],
      [
        "gemini/imagen-4.0-generate-001",
        "a forbidden-image lighthouse",
        "All images were filtered out",
      ],
      ["gemini/gemini-2.5-flash-image", "a forbidden lighthouse", "PROHIBITED_CONTENT"],
      ["vertex_ai/gemini-3-pro-image-preview", "a forbidden-image lighthouse", "IMAGE_SAFETY"],
    ])("%s, %j → content_policy_violation, nothing charged", async (model, prompt, said) => {
      const f = failed(await call({ model, prompt, n: 2 }));
      expect(f.code).toBe("content_policy_violation");
      expect(f.message).toContain(said);
      expect(f.headers.get("x-imagegate-cost-usd")).toBe("0");
      if (protocol === "rest") {
        expect(f.httpStatus).toBe(400);
        expect(f.type).toBe("invalid_request_error");
      } else {
        expect(f.grpcCode).toBe(Code.InvalidArgument);
      }
    });

    it("Vertex partial filter: survivors returned, only they charged", async () => {
      const res = ok(
        await call({
          model: "vertex_ai/imagen-4.0-generate-001",
          prompt: "a partly-forbidden lighthouse",
          n: 4,
        }),
      );
      expect(res.response.data).toHaveLength(2);
      expect(cost(res.headers)).toBeCloseTo(2 * 0.04, 10);
    });

    it("Gemini fan-out with a withheld image: two of three returned, usage and cost of those two only", async () => {
      const res = ok(
        await call({
          model: "gemini/gemini-2.5-flash-image",
          prompt: `a partly-forbidden lighthouse ${protocol}`,
          n: 3,
        }),
      );
      expect(res.response.data).toHaveLength(2);
      const usage = res.response.usage!;
      expect(usage.outputTokensDetails?.imageTokens).toBe(2 * 1290);
      expect(cost(res.headers)).toBeCloseTo(
        (usage.inputTokens * 0.3 + usage.outputTokens * 30) / 1e6,
        6,
      );
    });
  });

  describe("throttling", () => {
    it.each([
      ["gemini", "ai-studio"],
      ["vertex", "vertex"],
    ] as const)(
      "%s 429 RESOURCE_EXHAUSTED → 429 with RetryInfo's delay as Retry-After",
      async (which, api) => {
        const emulator = which === "gemini" ? google.gemini : google.vertex;
        emulator.faults.push(googleFaults.rateLimit(37, api));
        const f = failed(await call({ model: `${which}-limited-${protocol}`, prompt: "a fox" }));
        expect(f.headers.get("retry-after")).toBe("37");
        if (protocol === "rest") {
          expect(f.httpStatus).toBe(429);
          expect(f.type).toBe("rate_limit_error");
        } else {
          expect(f.grpcCode).toBe(Code.ResourceExhausted);
        }
      },
    );
  });

  describe("refused upstream credentials are the gateway's problem: 502 upstream_auth_failed", () => {
    it.each(["gemini-bad-key", "vertex-bad-key"])("%s", async (model) => {
      const f = failed(await call({ model, prompt: "a fox" }));
      expect(f.code).toBe("upstream_auth_failed");
      expect(f.message).not.toContain("AIza-not-the-right-key-7731");
      expect(f.message).not.toContain("PRIVATE KEY");
      if (protocol === "rest") {
        expect(f.httpStatus).toBe(502);
        expect(f.type).toBe("server_error");
      } else {
        expect(f.grpcCode).toBe(Code.Unavailable);
      }
    });
  });

  describe("what the API cannot take is a 400 naming the field, before any upstream call", () => {
    it.each([
      ["gemini/imagen-4.0-generate-001", { seed: 1 }, "seed"],
      ["gemini/imagen-3.0-generate-002", { negative_prompt: "cats" }, "negative_prompt"],
      ["vertex_ai/imagen-4.0-generate-001", { negative_prompt: "cats" }, "negative_prompt"],
      ["vertex_ai/imagen-4.0-fast-generate-001", { quality: "hd" }, "quality"],
      ["gemini/gemini-2.5-flash-image", { quality: "hd" }, "quality"],
      ["gemini/gemini-2.5-flash-image", { seed: 3 }, "seed"],
      ["vertex_ai/imagegeneration@002", { size: "1792x1024" }, "size"],
      ["gemini/imagen-4.0-generate-001", { aspect_ratio: "21:9" }, "aspect_ratio"],
      [
        "gemini/imagen-4.0-generate-001",
        { size: "1024x1024", aspect_ratio: "1:1" },
        "aspect_ratio",
      ],
      ["vertex_ai/imagen-3.0-generate-002", { n: 11 }, "n"],
      ["vertex_ai/imagen-3.0-generate-002", { style: "vivid" }, "style"],
      ["gemini/imagen-4.0-generate-001", { prompt: "x".repeat(1921) }, "prompt"],
      ["vertex_ai/gemini-2.5-flash-image", { background: "transparent" }, "background"],
    ])("%s %j → param %s", async (model, extra, param) => {
      const calls = await upstreamCalls(async () => {
        const f = failed(await call({ model, prompt: "a fox", ...extra }));
        expect(f.param).toBe(param);
        if (protocol === "rest") expect(f.httpStatus).toBe(400);
        else expect(f.grpcCode).toBe(Code.InvalidArgument);
      });
      expect(calls).toHaveLength(0);
    });
  });
});

describe("Vertex access token", () => {
  it("concurrent requests share the one token fetched for the stack's service account", async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        clients.call(i % 2 === 0 ? "rest" : "grpc", {
          model: "vertex_ai/imagen-3.0-generate-002",
          prompt: "a fox",
        }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const email = google.vertex.serviceAccount.client_email;
    const granted = google.vertex.tokenRequests.filter((t) => t.granted && t.clientEmail === email);
    expect(granted).toHaveLength(1);
  });
});
