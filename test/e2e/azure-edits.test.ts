/**
 * Azure OpenAI edits end to end: the `openai` SDK's images.edit against GPT-image
 * deployments (one file and an array, a mask, input_fidelity), sent to the deployment's
 * `/images/edits` as multipart; a DALL·E deployment and a WebP input are 400s before any
 * upstream call (Azure takes PNG or JPG), and Azure has no variations. Streamed edits
 * (`stream: true`) come from the deployment's own server-sent events, faults mid-stream
 * included.
 */
import { renderPng } from "@imagegate/emulators/png";
import OpenAI, { type APIError, toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzureStack, startAzureStack } from "../support/azure-stack.ts";

const SQUARE = renderPng(128, 128, "azure-edit");
const WIDE = renderPng(160, 128, "azure-wide");
/** A WebP file header: enough for the gateway to know it is WebP. */
const WEBP = Buffer.concat([
  Buffer.from("RIFF\x24\x00\x00\x00WEBPVP8 ", "latin1"),
  Buffer.alloc(24),
]);

let ctx: AzureStack;
let sdk: OpenAI;

beforeAll(async () => {
  ctx = await startAzureStack(
    (azure) => `
model_list:
  - model_name: azure-editor
    params:
      model: azure/img-prod
      api_base: ${azure.endpoint}
    model_info:
      base_model: gpt-image-1
  - model_name: azure-mini
    params:
      model: azure/gpt-image-1-mini
      api_base: ${azure.endpoint}
  - model_name: azure-dalle
    params:
      model: azure/dall-e-3
      api_base: ${azure.endpoint}
router_settings:
  num_retries: 0
`,
    { "img-prod": "gpt-image-1", "gpt-image-1-mini": "gpt-image-1-mini", "dall-e-3": "dall-e-3" },
  );
  sdk = new OpenAI({ baseURL: `${ctx.stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await ctx?.close();
});

function lastAzure(): { path: string; body: Record<string, unknown> } {
  const r = ctx.azure.requests.at(-1)!;
  return { path: r.path, body: r.body as Record<string, unknown> };
}

describe("Azure GPT-image edits", () => {
  it("edits two images with a mask and input_fidelity on the deployment's /images/edits", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: "azure-editor",
        image: [
          await toFile(SQUARE, "a.png", { type: "image/png" }),
          await toFile(WIDE, "b.png", { type: "image/png" }),
        ],
        mask: await toFile(SQUARE, "m.png", { type: "image/png" }),
        prompt: "a lighthouse",
        input_fidelity: "high",
      })
      .withResponse();
    expect(data.data).toHaveLength(1);
    expect(Buffer.from(data.data![0]!.b64_json!, "base64").subarray(1, 4).toString()).toBe("PNG");
    const up = lastAzure();
    expect(up.path).toMatch(/^\/openai\/deployments\/img-prod\/images\/edits\?api-version=/);
    expect(up.body).toMatchObject({ prompt: "a lighthouse", input_fidelity: "high" });
    expect(up.body).not.toHaveProperty("model");
    expect((up.body.files as { name: string }[]).map((f) => f.name)).toEqual([
      "image[]",
      "image[]",
      "mask",
    ]);
    expect(response.headers.get("x-imagegate-model")).toBe("azure-editor");
    // The input images are billed as input image tokens at gpt-image-1's image-input rate
    // (src/pricing/prices/azure.yaml: text $5, image input $10, image output $40 per 1M).
    const u = data.usage!;
    expect(u.input_tokens_details.image_tokens).toBeGreaterThan(0);
    const expected =
      (u.input_tokens_details.text_tokens * 5 +
        u.input_tokens_details.image_tokens * 10 +
        u.output_tokens * 40) /
      1e6;
    expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(expected, 9);
  });

  const refusals: [
    string,
    () => Promise<Parameters<OpenAI["images"]["edit"]>[0]>,
    string,
    RegExp,
  ][] = [
    [
      "a DALL·E deployment",
      async () => ({ model: "azure-dalle", image: await toFile(SQUARE, "a.png"), prompt: "x" }),
      "model",
      /does not support image edits/,
    ],
    [
      "a WebP input (Azure takes PNG or JPG)",
      async () => ({ model: "azure-editor", image: await toFile(WEBP, "a.webp"), prompt: "x" }),
      "image",
      /WEBP/,
    ],
    [
      "input_fidelity on gpt-image-1-mini",
      async () => ({
        model: "azure-mini",
        image: await toFile(SQUARE, "a.png"),
        prompt: "x",
        input_fidelity: "low",
      }),
      "input_fidelity",
      /not supported/,
    ],
  ];
  for (const [name, params, param, message] of refusals) {
    it(`${name}: 400 naming '${param}', nothing sent to Azure`, async () => {
      const before = ctx.azure.requests.length;
      const err = (await sdk.images.edit(await params()).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(err.message).toMatch(message);
      expect(ctx.azure.requests.length).toBe(before);
    });
  }

  it("has no variations", async () => {
    const err = (await sdk.images
      .createVariation({ model: "azure-editor", image: await toFile(SQUARE, "a.png") })
      .catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(400);
    expect(err.param).toBe("model");
  });
});

describe("Azure GPT-image edits with stream: true", () => {
  it("the SDK iterates the deployment's partial images, then the completed image", async () => {
    const stream = await sdk.images.edit({
      model: "azure-editor",
      image: await toFile(SQUARE, "a.png", { type: "image/png" }),
      prompt: "a lighthouse",
      size: "1024x1024",
      quality: "low",
      stream: true,
      partial_images: 2,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      "image_edit.partial_image",
      "image_edit.partial_image",
      "image_edit.completed",
    ]);
    expect(
      (events[2] as unknown as { imagegate_cost_usd: number }).imagegate_cost_usd,
    ).toBeGreaterThan(0);
    const up = lastAzure();
    expect(up.path).toMatch(/^\/openai\/deployments\/img-prod\/images\/edits\?api-version=/);
    // The form's text fields as recorded (Azure's form parser keeps them as text).
    expect(up.body).toMatchObject({ stream: "true", partial_images: 2 });
  });

  it("a fault mid-stream is one error event, and nothing after it", async () => {
    ctx.azure.streamFaults.push({ afterEvents: 1, action: "error" });
    const stream = await sdk.images.edit({
      model: "azure-editor",
      image: await toFile(SQUARE, "a.png", { type: "image/png" }),
      prompt: "a lighthouse",
      quality: "low",
      stream: true,
      partial_images: 2,
    });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const event of stream) seen.push(event.type);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(["image_edit.partial_image"]);
    expect(err).toBeInstanceOf(OpenAI.APIError);
  });
});
