/**
 * Image edits and variations end to end against the OpenAI emulator: the official `openai`
 * SDK's `images.edit` (one file, an array of files, a mask) and `images.createVariation`,
 * the JSON form with data: URLs, Connect and gRPC with bytes; every input check answered
 * by the gateway before anything reaches the emulator; a body over the upload limit (413).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { renderPng } from "@imagegate/emulators/png";
import OpenAI, { type APIError, toFile } from "openai";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EditImageRequestSchema,
  ImageService,
  InputImageSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { spendLogs } from "../../src/db/spend-log.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import { grpcClient } from "../support/grpc.ts";
import { type Stack, startStack } from "../support/stack.ts";

const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;

const YAML = `
model_list:
  - model_name: editor
    params:
      model: openai/gpt-image-1
  - model_name: legacy
    params:
      model: openai/dall-e-2
  - model_name: generator
    params:
      model: openai/dall-e-3
router_settings:
  num_retries: 0
server:
  max_upload_bytes: ${MAX_UPLOAD_BYTES}
`;

/** A PNG with an alpha channel, fully transparent in its top-left quarter (OpenAI's mask). */
function maskPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      png.data[i + 3] = x < width / 2 && y < height / 2 ? 0 : 255;
    }
  }
  return PNG.sync.write(png);
}

const SQUARE = renderPng(256, 256, "edit-input");
const WIDE = renderPng(320, 200, "edit-wide");
const MASK = maskPng(256, 256);

let stack: Stack;
let sdk: OpenAI;

beforeAll(async () => {
  stack = await startStack({ yaml: YAML });
  sdk = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await stack?.close();
});

function lastUpstream(): { path: string; body: Record<string, unknown> } {
  const r = stack.openai.requests.at(-1)!;
  return { path: r.path, body: r.body as Record<string, unknown> };
}

interface RecordedFile {
  name: string;
  size: number;
  format: string;
  width: number;
  height: number;
}

describe("the openai SDK's images.edit", () => {
  it("edits one square PNG with a mask on dall-e-2 (image and mask as sent)", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: "legacy",
        image: await toFile(SQUARE, "in.png", { type: "image/png" }),
        mask: await toFile(MASK, "mask.png", { type: "image/png" }),
        prompt: "a red balloon in the corner",
        size: "256x256",
        response_format: "b64_json",
      })
      .withResponse();
    expect(data.data).toHaveLength(1);
    const out = Buffer.from(data.data![0]!.b64_json!, "base64");
    expect(out.subarray(1, 4).toString()).toBe("PNG");
    const up = lastUpstream();
    expect(up.path).toBe("/v1/images/edits");
    expect(up.body).toMatchObject({ model: "dall-e-2", prompt: "a red balloon in the corner" });
    const files = up.body.files as RecordedFile[];
    expect(files.map((f) => [f.name, f.size, f.width])).toEqual([
      ["image", SQUARE.length, 256],
      ["mask", MASK.length, 256],
    ]);
    // dall-e-2's per-image price at 256x256 (src/pricing/prices/openai.yaml).
    expect(response.headers.get("x-imagegate-cost-usd")).toBe("0.016");
    expect(response.headers.get("x-imagegate-model")).toBe("legacy");
  });

  it("edits an array of files on gpt-image-1 (sent as image[]), input_fidelity passed on, input image tokens priced", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: "editor",
        image: [
          await toFile(SQUARE, "a.png", { type: "image/png" }),
          await toFile(WIDE, "b.png", { type: "image/png" }),
        ],
        prompt: "put them side by side",
        input_fidelity: "high",
        quality: "low",
        size: "1024x1024",
      })
      .withResponse();
    expect(data.data).toHaveLength(1);
    expect(data.data![0]!.b64_json).toBeTruthy();
    const imageTokens = data.usage!.input_tokens_details.image_tokens;
    expect(imageTokens).toBeGreaterThan(0);
    const up = lastUpstream();
    expect(up.body).toMatchObject({ model: "gpt-image-1", input_fidelity: "high", quality: "low" });
    // Sent with its length, as the SDK sends it, not chunked.
    const sent = stack.openai.requests.at(-1)!.headers;
    expect(Number(sent["content-length"])).toBeGreaterThan(SQUARE.length + WIDE.length);
    expect(sent["transfer-encoding"]).toBeUndefined();
    expect((up.body.files as RecordedFile[]).map((f) => [f.name, f.width])).toEqual([
      ["image[]", 256],
      ["image[]", 320],
    ]);
    // gpt-image-1: text $5, image input $10, image output $40 per million tokens.
    const u = data.usage!;
    const expected =
      (u.input_tokens_details.text_tokens * 5 + imageTokens * 10 + u.output_tokens * 40) / 1e6;
    expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(expected, 9);
  });

  it("answers a url when asked (the gateway serves GPT-image bytes itself)", async () => {
    const res = await sdk.images.edit({
      model: "editor",
      image: await toFile(SQUARE, "a.png", { type: "image/png" }),
      prompt: "a hat",
      response_format: "url",
    });
    const url = res.data![0]!.url!;
    expect(url).toMatch(/\/v1\/images\/files\//);
    const got = await fetch(url);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("image/png");
  });
});

describe("the openai SDK's images.createVariation", () => {
  it("makes variations of a square PNG on dall-e-2", async () => {
    const { data, response } = await sdk.images
      .createVariation({
        model: "legacy",
        image: await toFile(SQUARE, "in.png", { type: "image/png" }),
        n: 2,
        size: "512x512",
        response_format: "b64_json",
      })
      .withResponse();
    expect(data.data).toHaveLength(2);
    const up = lastUpstream();
    expect(up.path).toBe("/v1/images/variations");
    expect(up.body).toMatchObject({ model: "dall-e-2", n: 2, size: "512x512" });
    expect(response.headers.get("x-imagegate-cost-usd")).toBe("0.036");
  });

  it("is a 400 naming the model for a model without variations", async () => {
    const before = stack.openai.requests.length;
    const err = await sdk.images
      .createVariation({
        model: "editor",
        image: await toFile(SQUARE, "in.png", { type: "image/png" }),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as APIError).param).toBe("model");
    expect((err as APIError).message).toMatch(/does not support image variations/);
    expect(stack.openai.requests.length).toBe(before);
  });
});

describe("input checks, before any upstream call", () => {
  const cases: {
    name: string;
    params: () => Promise<Parameters<OpenAI["images"]["edit"]>[0]>;
    param: string;
    message: RegExp;
  }[] = [
    {
      name: "a file that is not an image",
      params: async () => ({
        model: "editor",
        image: await toFile(Buffer.from("just some text"), "a.png", { type: "image/png" }),
        prompt: "x",
      }),
      param: "image",
      message: /not a PNG, JPEG or WebP/,
    },
    {
      name: "a non-square PNG for dall-e-2",
      params: async () => ({
        model: "legacy",
        image: await toFile(WIDE, "a.png", { type: "image/png" }),
        prompt: "x",
      }),
      param: "image",
      message: /square/,
    },
    {
      name: "more images than dall-e-2 takes",
      params: async () => ({
        model: "legacy",
        image: [
          await toFile(SQUARE, "a.png", { type: "image/png" }),
          await toFile(SQUARE, "b.png", { type: "image/png" }),
        ],
        prompt: "x",
      }),
      param: "image",
      message: /at most 1/,
    },
    {
      name: "a mask whose size differs from the image's",
      params: async () => ({
        model: "editor",
        image: await toFile(SQUARE, "a.png", { type: "image/png" }),
        mask: await toFile(maskPng(128, 128), "m.png", { type: "image/png" }),
        prompt: "x",
      }),
      param: "mask",
      message: /same size/,
    },
    {
      name: "a mask that is not a PNG",
      params: async () => ({
        model: "editor",
        image: await toFile(SQUARE, "a.png", { type: "image/png" }),
        mask: await toFile(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), "m.jpg"),
        prompt: "x",
      }),
      param: "mask",
      message: /./,
    },
    {
      name: "input_fidelity on a model without it",
      params: async () => ({
        model: "legacy",
        image: await toFile(SQUARE, "a.png", { type: "image/png" }),
        prompt: "x",
        input_fidelity: "high",
      }),
      param: "input_fidelity",
      message: /not supported with legacy/,
    },
    {
      name: "a model that does not edit",
      params: async () => ({
        model: "generator",
        image: await toFile(SQUARE, "a.png", { type: "image/png" }),
        prompt: "x",
      }),
      param: "model",
      message: /'generator' does not support image edits/,
    },
    {
      name: "no prompt",
      params: async () =>
        ({
          model: "editor",
          image: await toFile(SQUARE, "a.png", { type: "image/png" }),
        }) as never,
      param: "prompt",
      message: /Missing required parameter/,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: 400 naming '${c.param}'`, async () => {
      const before = stack.openai.requests.length;
      const err = await sdk.images.edit(await c.params()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      const e = err as APIError;
      expect(e.param).toBe(c.param);
      expect(e.type).toBe("invalid_request_error");
      expect(e.message).toMatch(c.message);
      expect(e.headers?.get("x-imagegate-cost-usd")).toBe("0");
      expect(stack.openai.requests.length).toBe(before);
    });
  }

  it("an unknown form field is a 400 naming it", async () => {
    const form = new FormData();
    form.set("image", new Blob([new Uint8Array(SQUARE)], { type: "image/png" }), "a.png");
    form.set("prompt", "x");
    form.set("colour", "red");
    const res = await fetch(`${stack.url}/v1/images/edits`, { method: "POST", body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("colour");
  });

  it("a body over server.max_upload_bytes is a 413 request_too_large", async () => {
    const before = stack.openai.requests.length;
    const form = new FormData();
    form.set("prompt", "x");
    form.set("model", "editor");
    form.set("image", new Blob([Buffer.alloc(MAX_UPLOAD_BYTES + 1024, 1)]), "big.png");
    const res = await fetch(`${stack.url}/v1/images/edits`, { method: "POST", body: form });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("request_too_large");
    expect(stack.openai.requests.length).toBe(before);
  });

  it("a chunked body over the limit (no content-length) is a 413 too", async () => {
    const form = new FormData();
    form.set("prompt", "x");
    form.set("image", new Blob([Buffer.alloc(MAX_UPLOAD_BYTES + 1024, 1)]), "big.png");
    const encoded = new Response(form);
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": encoded.headers.get("content-type")! },
      body: encoded.body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
  });
});

describe("the JSON form and the RPC protocols", () => {
  it("takes images as data: URLs in JSON", async () => {
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "legacy",
        prompt: "a boat",
        images: [{ image_url: `data:image/png;base64,${SQUARE.toString("base64")}` }],
        mask: { image_url: `data:image/png;base64,${MASK.toString("base64")}` },
        response_format: "b64_json",
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { b64_json: string }[] };
    expect(body.data).toHaveLength(1);
    expect((lastUpstream().body.files as RecordedFile[]).map((f) => f.name)).toEqual([
      "image",
      "mask",
    ]);
  });

  it("refuses an https image URL on a host not allowed (400 naming image)", async () => {
    const before = stack.openai.requests.length;
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "editor",
        prompt: "a boat",
        images: [{ image_url: "https://images.example.com/a.png" }],
      }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error.param).toBe("image");
    expect(body.error.message).toMatch(/will not fetch/);
    expect(stack.openai.requests.length).toBe(before);
  });

  it("Connect (binary, h1) edits with the image as bytes", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1", useBinaryFormat: true }),
    );
    const res = await client.editImage({
      model: "editor",
      prompt: "a cat",
      images: [{ data: SQUARE, mediaType: "image/png" }],
    });
    expect(res.data).toHaveLength(1);
    expect(res.data[0]!.b64Json!.byteLength).toBeGreaterThan(0);
    expect(res.usage?.inputTokensDetails?.imageTokens).toBeGreaterThan(0);
  });

  it("gRPC edits with bytes, and a bad image is INVALID_ARGUMENT", async () => {
    const g = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    try {
      const { response } = await g.unary("editImage", {
        model: "legacy",
        prompt: "a cat",
        images: [create(InputImageSchema, { data: SQUARE })],
        responseFormat: "b64_json",
      } as never);
      expect((response as unknown as { data: unknown[] }).data).toHaveLength(1);
      const err = await g
        .unary(
          "editImage",
          create(EditImageRequestSchema, {
            model: "legacy",
            prompt: "a cat",
            images: [{ data: new Uint8Array([1, 2, 3]) }],
          }),
        )
        .catch((e: unknown) => e);
      expect((err as { code: number }).code).toBe(3);
    } finally {
      g.close();
    }
  });
});

describe("the spend log", () => {
  it("has one row per edit, streamed edit and variation, with the key, the model and what it cost", async () => {
    const data = mkdtempSync(join(tmpdir(), "imagegate-edits-"));
    const key = "sk-edits-0123456789abcdef";
    const logged = await startStack({
      yaml: `keys:\n  - key: ${key}\n    name: editors\n    max_budget: 1\n${YAML}`,
      env: { XDG_DATA_HOME: data },
    });
    let costs: number[];
    try {
      const client = new OpenAI({ baseURL: `${logged.url}/v1`, apiKey: key, maxRetries: 0 });
      const edit = await client.images
        .edit({
          model: "legacy",
          prompt: "a boat",
          image: await toFile(SQUARE, "in.png", { type: "image/png" }),
          size: "256x256",
          user: "alice",
        })
        .withResponse();
      const variation = await client.images
        .createVariation({
          model: "legacy",
          image: await toFile(SQUARE, "in.png", { type: "image/png" }),
          size: "256x256",
        })
        .withResponse();
      costs = [edit, variation].map((r) => Number(r.response.headers.get("x-imagegate-cost-usd")));
      const streamed = await client.images.edit({
        model: "editor",
        prompt: "a boat",
        image: await toFile(SQUARE, "in.png", { type: "image/png" }),
        size: "1024x1024",
        quality: "low",
        stream: true,
        partial_images: 1,
        user: "bob",
      });
      for await (const event of streamed)
        if (event.type === "image_edit.completed")
          costs.push((event as unknown as { imagegate_cost_usd: number }).imagegate_cost_usd);
    } finally {
      await logged.close();
    }
    const database = openSqlite(join(data, "imagegate", "imagegate.sqlite"));
    try {
      const rows = await spendLogs(database, { from: 0, to: Date.now() + 86_400_000 });
      expect(rows).toHaveLength(3);
      // The edit was sent with `user` alice, the streamed edit with bob, the variation without.
      const edit = rows.find((r) => r.end_user === "alice");
      const variation = rows.find((r) => r.end_user === null);
      for (const [row, cost] of [
        [edit, costs[0]],
        [variation, costs[1]],
      ] as const) {
        expect(row).toMatchObject({
          key_alias: "editors",
          model: "legacy",
          provider: "openai",
          status: "success",
          images: 1,
          size: "256x256",
        });
        expect(cost).toBeGreaterThan(0);
        expect(row!.spend).toBeCloseTo(cost!, 10);
      }
      // The streamed edit's row is written once its stream is over, with what it cost.
      const streamedRow = rows.find((r) => r.end_user === "bob");
      expect(streamedRow).toMatchObject({
        key_alias: "editors",
        model: "editor",
        provider: "openai",
        status: "success",
        images: 1,
        size: "1024x1024",
        quality: "low",
      });
      expect(costs[2]).toBeGreaterThan(0);
      expect(streamedRow!.spend).toBeCloseTo(costs[2]!, 10);
    } finally {
      await database.close();
    }
  });
});

describe("a budgeted key's hold", () => {
  it("includes the input images' most input image tokens: 16 high-fidelity inputs are refused where low fidelity is served", async () => {
    const key = "sk-edit-hold-0123456789abcdef";
    const held = await startStack({
      yaml: `keys:\n  - key: ${key}\n    name: holder\n    max_budget: 0.1\nmodel_list:\n  - model_name: editor\n    params:\n      model: openai/gpt-image-1\n`,
    });
    try {
      const client = new OpenAI({ baseURL: `${held.url}/v1`, apiKey: key, maxRetries: 0 });
      const input = renderPng(1024, 1024, "hold-input");
      const edit = async (input_fidelity: "low" | "high") =>
        client.images
          .edit({
            model: "editor",
            prompt: "the same, at night",
            image: await Promise.all(
              Array.from({ length: 16 }, (_, i) =>
                toFile(input, `in-${i}.png`, { type: "image/png" }),
              ),
            ),
            input_fidelity,
            quality: "low",
            size: "1024x1024",
          })
          .withResponse();
      // Held: $0.011 x 1.1 for the image, plus 16 x 3,050 input image tokens at $10/M
      // ($0.488): past the $0.10 budget, so refused before any upstream call.
      const err = await edit("high").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as APIError).code).toBe("budget_exceeded");
      expect(held.openai.requests).toHaveLength(0);
      // At low fidelity 16 x 135 tokens ($0.0216) fit: served, and billed from usage.
      const { data, response } = await edit("low");
      const u = data.usage!;
      expect(u.input_tokens_details.image_tokens).toBe(16 * 135);
      expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(
        (u.input_tokens_details.text_tokens * 5 + 16 * 135 * 10 + u.output_tokens * 40) / 1e6,
        9,
      );
    } finally {
      await held.close();
    }
  });
});
