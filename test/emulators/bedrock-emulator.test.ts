/**
 * The Bedrock emulator on its own: SigV4 auth checked against AWS's published test vector
 * and against requests signed by the official AWS SDK (@aws-sdk/client-bedrock-runtime),
 * Bedrock's 403 shapes, validation per family, real PNGs, refusal shapes and faults.
 */
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type BedrockEmulator,
  bedrockFaults,
  startBedrockEmulator,
} from "@imagegate/emulators/bedrock";
import { pngSize } from "@imagegate/emulators/png";
import { formatAmzDate, verifySigV4 } from "@imagegate/emulators/sigv4";
import { signBedrockRequest } from "../../src/providers/bedrock/signing.ts";

const REGION = "eu-west-1";
const LONG_TERM = {
  accessKeyId: "AKIAEMULATORTEST0001",
  secretAccessKey: "emulator/secret/key+for+tests/0000000000",
};
const TEMPORARY = {
  accessKeyId: "ASIAEMULATORTEST0002",
  secretAccessKey: "emulator/temporary/secret+key/0000000000",
  sessionToken: "FwoGZXIvYXdzEXAMPLEtoken//for+tests==",
};

let emulator: BedrockEmulator;
/** The emulator's clock, moved by the skew tests. */
let clockOffsetMs = 0;

beforeAll(async () => {
  emulator = await startBedrockEmulator({
    credentials: [LONG_TERM, TEMPORARY],
    region: REGION,
    now: () => Date.now() + clockOffsetMs,
  });
});
afterAll(async () => {
  await emulator?.close();
});
afterEach(() => {
  emulator.faults.clear();
  clockOffsetMs = 0;
});

function sdk(
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = LONG_TERM,
  region = REGION,
) {
  return new BedrockRuntimeClient({
    region,
    endpoint: emulator.endpoint,
    credentials,
    maxAttempts: 1,
  });
}

async function sdkInvoke(modelId: string, body: unknown, client = sdk()) {
  const out = await client.send(
    new InvokeModelCommand({
      modelId,
      body: JSON.stringify(body),
      contentType: "application/json",
      accept: "application/json",
    }),
  );
  return JSON.parse(new TextDecoder().decode(out.body)) as Record<string, unknown>;
}

async function sdkError(
  modelId: string,
  body: unknown,
  client = sdk(),
): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await sdkInvoke(modelId, body, client);
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error("expected the call to fail");
}

/** A request signed by the gateway's signer, sent with fetch (for raw status, headers and body). */
async function invoke(
  modelId: string,
  body: unknown,
  options: { credentials?: typeof LONG_TERM & { sessionToken?: string }; rawBody?: string } = {},
) {
  const url = `${emulator.endpoint}/model/${encodeURIComponent(modelId)}/invoke`;
  const payload = options.rawBody ?? JSON.stringify(body);
  const headers = await signBedrockRequest({
    url,
    body: payload,
    credentials: options.credentials ?? LONG_TERM,
    region: REGION,
  });
  const { host: _host, ...sendable } = headers; // fetch sets Host itself (the same value)
  const res = await fetch(url, { method: "POST", headers: sendable, body: payload });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: JSON.parse(text) as Record<string, unknown>,
  };
}

describe("SigV4", () => {
  it("verifies AWS's published test vector (get-vanilla)", () => {
    const verdict = verifySigV4(
      {
        method: "GET",
        target: "/",
        headers: {
          host: "example.amazonaws.com",
          "x-amz-date": "20150830T123600Z",
          authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        body: Buffer.alloc(0),
      },
      {
        service: "service",
        region: "us-east-1",
        now: Date.UTC(2015, 7, 30, 12, 36, 0),
        credential: (id) =>
          id === "AKIDEXAMPLE"
            ? { accessKeyId: id, secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }
            : undefined,
      },
    );
    expect(verdict.ok).toBe(true);
  });

  it("accepts a request signed by the official AWS SDK (model id with ':')", async () => {
    const answer = await sdkInvoke("stability.sd3-large-v1:0", {
      prompt: "a lighthouse",
      aspect_ratio: "16:9",
    });
    expect(answer.finish_reasons).toEqual([null]);
    const images = answer.images as string[];
    expect(pngSize(Buffer.from(images[0]!, "base64"))).toEqual({ width: 1344, height: 768 });
    const recorded = emulator.requests.at(-1)!;
    expect(recorded.path).toBe("/model/stability.sd3-large-v1%3A0/invoke");
    expect(recorded.modelId).toBe("stability.sd3-large-v1:0");
    expect(String(recorded.headers.authorization)).toContain(`/${REGION}/bedrock/aws4_request`);
  });

  it("rejects a request the SDK signed with a wrong secret: 403 InvalidSignatureException", async () => {
    const err = await sdkError(
      "amazon.nova-canvas-v1:0",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "x" } },
      sdk({ ...LONG_TERM, secretAccessKey: "wrong-secret" }),
    );
    expect(err).toMatchObject({ name: "InvalidSignatureException", status: 403 });
    expect(err.message).toMatch(/^The request signature we calculated does not match/);
  });

  it("rejects an unknown access key: 403 UnrecognizedClientException", async () => {
    const err = await sdkError(
      "amazon.nova-canvas-v1:0",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "x" } },
      sdk({ accessKeyId: "AKIAUNKNOWNKEY000000", secretAccessKey: "x" }),
    );
    expect(err).toMatchObject({
      name: "UnrecognizedClientException",
      status: 403,
      message: "The security token included in the request is invalid.",
    });
  });

  it("rejects a signature scoped to another region", async () => {
    const err = await sdkError(
      "amazon.nova-canvas-v1:0",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "x" } },
      sdk(LONG_TERM, "us-east-1"),
    );
    expect(err).toMatchObject({ name: "InvalidSignatureException", status: 403 });
    expect(err.message).toMatch(/valid region/);
  });

  it("round-trips a session token: the SDK's temporary credentials work, without the token they do not", async () => {
    const answer = await sdkInvoke(
      "amazon.titan-image-generator-v1",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "a fox" } },
      sdk(TEMPORARY),
    );
    expect(answer.images).toHaveLength(1);
    expect(emulator.requests.at(-1)!.headers["x-amz-security-token"]).toBe(TEMPORARY.sessionToken);
    const { sessionToken: _token, ...withoutToken } = TEMPORARY;
    const err = await sdkError(
      "amazon.titan-image-generator-v1",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "a fox" } },
      sdk(withoutToken),
    );
    expect(err).toMatchObject({ name: "UnrecognizedClientException", status: 403 });
    const wrong = await sdkError(
      "amazon.titan-image-generator-v1",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "a fox" } },
      sdk({ ...TEMPORARY, sessionToken: "other" }),
    );
    expect(wrong.name).toBe("UnrecognizedClientException");
    // The gateway's signer carries the token too.
    const ok = await invoke(
      "amazon.titan-image-generator-v1",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "a fox" } },
      { credentials: TEMPORARY },
    );
    expect(ok.status).toBe(200);
  });

  it("rejects an X-Amz-Date more than five minutes off, either way", async () => {
    clockOffsetMs = 6 * 60 * 1000; // the emulator's clock is ahead: the signature has expired
    const expired = await invoke("stability.stable-diffusion-xl-v1", {
      text_prompts: [{ text: "x" }],
    });
    expect(expired.status).toBe(403);
    expect(expired.headers.get("x-amzn-errortype")).toMatch(/^InvalidSignatureException:/);
    expect(String(expired.json.message)).toMatch(
      /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/,
    );
    clockOffsetMs = -6 * 60 * 1000;
    const early = await invoke("stability.stable-diffusion-xl-v1", {
      text_prompts: [{ text: "x" }],
    });
    expect(early.status).toBe(403);
    expect(String(early.json.message)).toMatch(/^Signature not yet current/);
    clockOffsetMs = 4 * 60 * 1000; // within the allowed skew
    expect(
      (await invoke("stability.stable-diffusion-xl-v1", { text_prompts: [{ text: "x" }] })).status,
    ).toBe(200);
  });

  it("answers an unsigned request with 403 MissingAuthenticationTokenException", async () => {
    const res = await fetch(`${emulator.endpoint}/model/amazon.nova-canvas-v1%3A0/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-amz-date": formatAmzDate(Date.now()) },
      body: "{}",
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-amzn-errortype")).toMatch(/^MissingAuthenticationTokenException/);
    expect(res.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("validation per family", () => {
  const malformed = (violation: string) =>
    `Malformed input request: ${violation}, please reformat your input and try again.`;

  it.each([
    [
      "stability.stable-diffusion-xl-v1",
      { text_prompts: [{ text: "x" }], foo: 1 },
      malformed("#: extraneous key [foo] is not permitted"),
    ],
    ["stability.stable-diffusion-xl-v1", {}, malformed("#: required key [text_prompts] not found")],
    [
      "stability.stable-diffusion-xl-v1",
      { text_prompts: [{ text: "x".repeat(2001) }] },
      malformed("#/text_prompts/0/text: expected maxLength: 2000, actual: 2001"),
    ],
    [
      "stability.stable-diffusion-xl-v1",
      { text_prompts: [{ text: "x" }], steps: 51 },
      malformed("#/steps: 51 is not less or equal to 50"),
    ],
    [
      "stability.stable-diffusion-xl-v1",
      { text_prompts: [{ text: "x" }], style_preset: "vivid" },
      malformed("#/style_preset: vivid is not a valid enum value"),
    ],
    [
      "stability.stable-diffusion-xl-v1",
      { text_prompts: [{ text: "x" }], seed: "1" },
      malformed("#/seed: expected type: Integer, found: String"),
    ],
    [
      "stability.sd3-5-large-v1:0",
      { prompt: "x", aspect_ratio: "4:3" },
      malformed("#/aspect_ratio: 4:3 is not a valid enum value"),
    ],
    [
      "stability.stable-image-core-v1:0",
      { prompt: "x", mode: "text-to-image" },
      malformed("#: extraneous key [mode] is not permitted"),
    ],
    [
      "stability.sd3-large-v1:0",
      { prompt: "x", seed: 4294967295 },
      malformed("#/seed: 4294967295 is not less or equal to 4294967294"),
    ],
    [
      "amazon.titan-image-generator-v1",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "x".repeat(513) } },
      malformed("#/textToImageParams/text: expected maxLength: 512, actual: 513"),
    ],
    [
      "amazon.titan-image-generator-v2:0",
      {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
        imageGenerationConfig: { numberOfImages: 6 },
      },
      malformed("#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5"),
    ],
    [
      "amazon.titan-image-generator-v2:0",
      {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
        imageGenerationConfig: { seed: 2147483647 },
      },
      malformed("#/imageGenerationConfig/seed: 2147483647 is not less or equal to 2147483646"),
    ],
    [
      "amazon.nova-canvas-v1:0",
      { taskType: "TEXT_IMAGE", textToImageParams: { text: "x", style: "VIVID" } },
      malformed("#/textToImageParams/style: VIVID is not a valid enum value"),
    ],
    [
      "amazon.nova-canvas-v1:0",
      {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
        imageGenerationConfig: { seed: 858993460 },
      },
      malformed("#/imageGenerationConfig/seed: 858993460 is not less or equal to 858993459"),
    ],
  ])("%s %j", async (modelId, body, message) => {
    const res = await invoke(modelId, body);
    expect(res.status).toBe(400);
    expect(res.headers.get("x-amzn-errortype")).toMatch(/^ValidationException:/);
    expect(res.json).toEqual({ message });
  });

  it("checks sizes by family: SDXL's list, Titan's list, Nova's rules", async () => {
    const sdxl = await invoke("stability.stable-diffusion-xl-v1", {
      text_prompts: [{ text: "x" }],
      width: 1792,
      height: 1024,
    });
    expect([sdxl.status, String(sdxl.json.message)]).toEqual([
      400,
      expect.stringMatching(/Invalid dimensions: 1792x1024/),
    ]);
    const titan = await invoke("amazon.titan-image-generator-v1", {
      taskType: "TEXT_IMAGE",
      textToImageParams: { text: "x" },
      imageGenerationConfig: { width: 1792, height: 1024 },
    });
    expect([titan.status, String(titan.json.message)]).toEqual([
      400,
      expect.stringMatching(/1792x1024 is not supported/),
    ]);
    for (const [w, h] of [
      [256, 256],
      [1000, 1000],
      [4096, 512],
      [4096, 4096],
    ]) {
      const nova = await invoke("amazon.nova-canvas-v1:0", {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
        imageGenerationConfig: { width: w, height: h },
      });
      expect(nova.status, `${w}x${h}`).toBe(400);
    }
    const ok = await invoke("amazon.nova-canvas-v1:0", {
      taskType: "TEXT_IMAGE",
      textToImageParams: { text: "x" },
      imageGenerationConfig: { width: 1792, height: 1024, numberOfImages: 3 },
    });
    expect(ok.status).toBe(200);
    expect((ok.json.images as string[]).map((b) => pngSize(Buffer.from(b, "base64")))).toEqual(
      Array(3).fill({ width: 1792, height: 1024 }),
    );
  });

  it("answers bad JSON with 'Malformed input request…' and an unknown model as invalid", async () => {
    const bad = await invoke("amazon.nova-canvas-v1:0", undefined, { rawBody: "{not json" });
    expect([bad.status, bad.json.message]).toEqual([
      400,
      "Malformed input request, please reformat your input and try again.",
    ]);
    const unknown = await invoke("stability.sd4-v1:0", { prompt: "x" });
    expect([unknown.status, unknown.json.message]).toEqual([
      400,
      "The provided model identifier is invalid.",
    ]);
  });
});

describe("images and refusals", () => {
  it("SDXL: an artifact at the asked size; 'forbidden' gives finishReason CONTENT_FILTERED", async () => {
    const ok = await invoke("stability.stable-diffusion-xl-v0", {
      text_prompts: [{ text: "a fox" }, { text: "forbidden", weight: -1 }],
      width: 1536,
      height: 640,
      seed: 5,
    });
    expect(ok.status).toBe(200);
    const artifact = (
      ok.json.artifacts as Array<{ seed: number; base64: string; finishReason: string }>
    )[0]!;
    expect([artifact.seed, artifact.finishReason]).toEqual([5, "SUCCESS"]); // a negative prompt is not the prompt
    expect(pngSize(Buffer.from(artifact.base64, "base64"))).toEqual({ width: 1536, height: 640 });
    const refused = await invoke("stability.stable-diffusion-xl-v1", {
      text_prompts: [{ text: "something forbidden" }],
    });
    expect(refused.status).toBe(200);
    expect((refused.json.artifacts as Array<{ finishReason: string }>)[0]!.finishReason).toBe(
      "CONTENT_FILTERED",
    );
  });

  it("SD3: finish_reasons ['Filter reason: prompt']", async () => {
    const refused = await invoke("stability.stable-image-ultra-v1:1", {
      prompt: "Forbidden fruit",
    });
    expect(refused.status).toBe(200);
    expect(refused.json.finish_reasons).toEqual(["Filter reason: prompt"]);
  });

  it("Titan and Nova: 400 ValidationException 'blocked by our content filters' (partly-forbidden too)", async () => {
    for (const [model, text] of [
      ["amazon.titan-image-generator-v2:0", "forbidden"],
      ["amazon.nova-canvas-v1:0", "a partly-forbidden scene"],
    ] as const) {
      const res = await invoke(model, {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text },
        imageGenerationConfig: { numberOfImages: 3 },
      });
      expect(res.status).toBe(400);
      expect(res.headers.get("x-amzn-errortype")).toMatch(/^ValidationException:/);
      expect(String(res.json.message)).toMatch(
        /^This request has been blocked by our content filters\./,
      );
    }
  });
});

describe("faults", () => {
  it("throttles with 429 ThrottlingException and no Retry-After", async () => {
    emulator.faults.push(bedrockFaults.throttling());
    const res = await invoke("amazon.nova-canvas-v1:0", {
      taskType: "TEXT_IMAGE",
      textToImageParams: { text: "x" },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("x-amzn-errortype")).toMatch(/^ThrottlingException:/);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.json).toEqual({ message: "Too many requests, please wait before trying again." });
  });

  it("the official SDK reads the emulator's error classes", async () => {
    emulator.faults.push(bedrockFaults.serviceUnavailable());
    const err = await sdkError("stability.sd3-large-v1:0", { prompt: "x" });
    expect(err).toMatchObject({ name: "ServiceUnavailableException", status: 503 });
    emulator.faults.push(bedrockFaults.modelTimeout());
    expect(await sdkError("stability.sd3-large-v1:0", { prompt: "x" })).toMatchObject({
      name: "ModelTimeoutException",
      status: 408,
    });
  });

  it("takes faults over the control endpoint, filtered by model", async () => {
    const post = await fetch(`${emulator.endpoint}/__emulator/faults`, {
      method: "POST",
      body: JSON.stringify({
        ...bedrockFaults.internalServer(),
        model: "amazon.titan-image-generator-v1",
        times: 2,
      }),
    });
    expect(post.status).toBe(201);
    expect(
      (
        await invoke("amazon.nova-canvas-v1:0", {
          taskType: "TEXT_IMAGE",
          textToImageParams: { text: "x" },
        })
      ).status,
    ).toBe(200);
    for (let i = 0; i < 2; i++) {
      const res = await invoke("amazon.titan-image-generator-v1", {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
      });
      expect(res.status).toBe(500);
      expect(res.headers.get("x-amzn-errortype")).toMatch(/^InternalServerException:/);
    }
    expect(
      (
        await invoke("amazon.titan-image-generator-v1", {
          taskType: "TEXT_IMAGE",
          textToImageParams: { text: "x" },
        })
      ).status,
    ).toBe(200);
    const bad = await fetch(`${emulator.endpoint}/__emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ nope: 1 }),
    });
    expect(bad.status).toBe(400);
    expect(
      (await fetch(`${emulator.endpoint}/__emulator/faults`, { method: "DELETE" })).status,
    ).toBe(204);
  });
});
