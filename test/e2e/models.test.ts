/**
 * `GET /v1/models` and `GET /v1/models/{id}` (ImageService.ListModels / GetModel): the
 * `openai` SDK's `models.list()` and `models.retrieve()`, plain HTTP, Connect and grpc-js;
 * each key sees what it may use, and nothing else.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  GetModelRequestSchema,
  ListModelsRequestSchema,
  ListModelsResponseSchema,
  ModelSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { startStack, type Stack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-models-test-0d41";
const TEAM_A_KEY = "sk-team-a-models-test-77c2";
const TEAM_B_KEY = "sk-team-b-models-test-19fe";

const MODEL_LIST = `
model_list:
  - model_name: image-hq
    params:
      model: openai/dall-e-3
  - model_name: image-mini
    params:
      model: openai/gpt-image-1
  - model_name: image-hq
    params:
      model: openai/dall-e-3
    model_info:
      id: second
  - model_name: mixed
    params:
      model: openai/dall-e-3
  - model_name: mixed
    params:
      model: recraft/recraftv3
      api_key: rk-test
`;

const YAML = `${MODEL_LIST}
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
keys:
  - key: os.environ/TEAM_A_KEY
    name: team-a
    # A public name, a direct name, a bare alias (resolves to openai/dall-e-3: not listed)
    # and a name that does not exist.
    models: [image-mini, openai/gpt-image-1, dall-e-3, no-such-model]
  - key: os.environ/TEAM_B_KEY
    name: team-b
`;

let stack: Stack;
let open: Stack;
beforeAll(async () => {
  stack = await startStack({
    yaml: YAML,
    env: { IMAGEGATE_MASTER_KEY: MASTER_KEY, TEAM_A_KEY, TEAM_B_KEY },
  });
  open = await startStack({ yaml: MODEL_LIST });
});
afterAll(async () => {
  await stack?.close();
  await open?.close();
});

const sdk = (apiKey: string, s = stack) =>
  new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });

async function listIds(client: OpenAI): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of client.models.list()) ids.push(model.id);
  return ids;
}

describe("the openai SDK", () => {
  it("models.list(): the master key sees every public name, in the config's order", async () => {
    const page = await sdk(MASTER_KEY).models.list();
    expect(page.data).toEqual([
      { id: "image-hq", object: "model", created: expect.any(Number), owned_by: "openai" },
      { id: "image-mini", object: "model", created: expect.any(Number), owned_by: "openai" },
      { id: "mixed", object: "model", created: expect.any(Number), owned_by: "imagegate" },
    ]);
    const now = Date.now() / 1000;
    for (const m of page.data) expect(m.created).toBeGreaterThan(now - 3600);
  });

  it("models.list(): a key without a model list sees every public name", async () => {
    expect(await listIds(sdk(TEAM_B_KEY))).toEqual(["image-hq", "image-mini", "mixed"]);
  });

  it("models.list(): a key limited to some models sees only those it can use", async () => {
    expect(await listIds(sdk(TEAM_A_KEY))).toEqual(["image-mini", "openai/gpt-image-1"]);
  });

  it("models.retrieve(): a public name and a direct name the key lists", async () => {
    const client = sdk(TEAM_A_KEY);
    expect(await client.models.retrieve("image-mini")).toEqual({
      id: "image-mini",
      object: "model",
      created: expect.any(Number),
      owned_by: "openai",
    });
    // The SDK sends the slash as %2F.
    expect(await client.models.retrieve("openai/gpt-image-1")).toMatchObject({
      id: "openai/gpt-image-1",
      owned_by: "openai",
    });
  });

  it("models.retrieve(): a direct name for a key without a model list", async () => {
    expect(await sdk(TEAM_B_KEY).models.retrieve("openai/dall-e-3")).toMatchObject({
      id: "openai/dall-e-3",
      object: "model",
      owned_by: "openai",
    });
  });

  it.each([
    ["a model the key may not use", TEAM_A_KEY, "image-hq"],
    ["a bare alias the key lists", TEAM_A_KEY, "dall-e-3"],
    ["a listed name that does not exist", TEAM_A_KEY, "no-such-model"],
    ["an unknown model", MASTER_KEY, "no-such-model"],
    ["an unknown direct name", MASTER_KEY, "openai/no-such-model"],
  ])("models.retrieve(): %s is OpenAI's 404 model_not_found", async (_, key, id) => {
    const err = await sdk(key)
      .models.retrieve(id)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      message: `The model '${id}' does not exist or you do not have access to it.`,
      type: "invalid_request_error",
      param: "model",
      code: "model_not_found",
    });
  });

  it("models.list() without a key is 401", async () => {
    await expect(sdk("sk-wrong").models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("an open gateway lists every public name to anyone", async () => {
    expect(await listIds(sdk("anything", open))).toEqual(["image-hq", "image-mini", "mixed"]);
  });
});

describe("plain HTTP", () => {
  const get = (path: string, key = TEAM_A_KEY) =>
    fetch(`${stack.url}${path}`, {
      headers: { authorization: `Bearer ${key}`, "x-request-id": "req-models-1" },
    });

  it("GET /v1/models is OpenAI's list, with the gateway's response headers", async () => {
    const res = await get("/v1/models");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-request-id")).toBe("req-models-1");
    expect(res.headers.get("x-imagegate-cost-usd")).toBe("0");
    const body = await res.json();
    expect(body.object).toBe("list");
    expect(body.data.map((m: { id: string }) => m.id)).toEqual([
      "image-mini",
      "openai/gpt-image-1",
    ]);
  });

  it.each(["/v1/models/openai/gpt-image-1", "/v1/models/openai%2Fgpt-image-1"])(
    "GET %s: the direct name's slash as is or encoded",
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect((await res.json()).id).toBe("openai/gpt-image-1");
    },
  );

  it("an unknown query parameter is a 400 naming it", async () => {
    const res = await get("/v1/models?limit=1");
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({
      type: "invalid_request_error",
      param: "limit",
      message: "Unrecognized request argument supplied: limit",
    });
  });

  it("the models routes answer GET only", async () => {
    const res = await fetch(`${stack.url}/v1/models`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEAM_A_KEY}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(404);
  });
});

describe("Connect and gRPC", () => {
  it("Connect: ListModels and GetModel with the key's metadata", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    const headers = { authorization: `Bearer ${TEAM_A_KEY}` };
    const list = await client.listModels({}, { headers });
    expect(list.object).toBe("list");
    expect(list.data.map((m) => m.id)).toEqual(["image-mini", "openai/gpt-image-1"]);
    const model = await client.getModel({ id: "openai/gpt-image-1" }, { headers });
    expect(model.ownedBy).toBe("openai");
    await expect(client.getModel({ id: "image-hq" }, { headers })).rejects.toMatchObject({
      code: 5, // NOT_FOUND
    });
  });

  it("grpc-js: ListModels and GetModel; a forbidden model is NOT_FOUND", async () => {
    const g = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${TEAM_A_KEY}`);
      const { response } = await g.unary<
        typeof ListModelsRequestSchema,
        typeof ListModelsResponseSchema
      >("listModels", {}, md);
      expect(response.data.map((m) => m.id)).toEqual(["image-mini", "openai/gpt-image-1"]);
      const got = await g.unary<typeof GetModelRequestSchema, typeof ModelSchema>(
        "getModel",
        { id: "image-mini" },
        md,
      );
      expect(got.response).toMatchObject({ id: "image-mini", object: "model", ownedBy: "openai" });
      const err = await g
        .unary<typeof GetModelRequestSchema, typeof ModelSchema>("getModel", { id: "mixed" }, md)
        .catch((e: unknown) => e as grpc.ServiceError);
      expect((err as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      g.close();
    }
  });
});
