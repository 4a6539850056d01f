/**
 * `router_settings.model_group_alias` (LiteLLM's) and `general_settings.default_model`:
 * an alias serves the model it stands for (the header names that model), a key listing
 * either name may use it, `GET /v1/models` lists aliases unless hidden; a request without a
 * model goes to the configured default. Config mistakes stop the config, naming the field.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { startStack, type Stack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-aliases-test-5a1e";
const ALIAS_KEY = "sk-alias-only-aliases-test-c3d0";
const TARGET_KEY = "sk-target-only-aliases-test-8b27";
const OTHER_KEY = "sk-other-aliases-test-e91f";

const YAML = `
model_list:
  - model_name: image-hq
    params: { model: openai/gpt-image-1 }
  - model_name: image-cheap
    params: { model: openai/dall-e-2 }
router_settings:
  model_group_alias:
    house-style: image-hq
    legacy-dalle:
      model: openai/dall-e-3
      hidden: true
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
  default_model: image-cheap
keys:
  - { key: os.environ/ALIAS_KEY, name: alias-only, models: [house-style] }
  - { key: os.environ/TARGET_KEY, name: target-only, models: [image-hq] }
  - { key: os.environ/OTHER_KEY, name: other, models: [image-cheap] }
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    yaml: YAML,
    env: { IMAGEGATE_MASTER_KEY: MASTER_KEY, ALIAS_KEY, TARGET_KEY, OTHER_KEY },
  });
});
afterAll(async () => {
  await stack?.close();
});

const sdk = (apiKey: string) => new OpenAI({ baseURL: `${stack.url}/v1`, apiKey, maxRetries: 0 });

async function generate(apiKey: string, model?: string) {
  const { data, response } = await sdk(apiKey)
    .images.generate({ prompt: "a lighthouse", ...(model ? { model } : {}) })
    .withResponse();
  return { data, model: response.headers.get("x-imagegate-model"), upstream: lastUpstreamModel() };
}

function lastUpstreamModel(): unknown {
  const last = stack.openai.requests.at(-1);
  return (last?.body as { model?: unknown } | undefined)?.model;
}

describe("model_group_alias", () => {
  it("serves an alias as the model it stands for", async () => {
    const r = await generate(MASTER_KEY, "house-style");
    expect(r.model).toBe("image-hq");
    expect(r.upstream).toBe("gpt-image-1");
    expect(r.data.data?.[0]?.b64_json?.length).toBeGreaterThan(100);
  });

  it("serves a hidden alias of a direct provider/model name", async () => {
    const r = await generate(MASTER_KEY, "legacy-dalle");
    expect(r.model).toBe("openai/dall-e-3");
    expect(r.upstream).toBe("dall-e-3");
  });

  it("lets a key listing the alias, or the model it stands for, use it", async () => {
    expect((await generate(ALIAS_KEY, "house-style")).upstream).toBe("gpt-image-1");
    expect((await generate(TARGET_KEY, "house-style")).upstream).toBe("gpt-image-1");
  });

  it("refuses a key that lists neither, naming the alias it asked for", async () => {
    const error = await generate(OTHER_KEY, "house-style").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((error as Error).message).toContain("'house-style'");
  });

  it("lists aliases that are not hidden, and retrieves hidden ones", async () => {
    const ids: string[] = [];
    for await (const m of sdk(MASTER_KEY).models.list()) ids.push(m.id);
    expect(ids).toEqual(["image-hq", "image-cheap", "house-style"]);
    const aliasOnly: string[] = [];
    for await (const m of sdk(ALIAS_KEY).models.list()) aliasOnly.push(m.id);
    expect(aliasOnly).toEqual(["house-style"]);
    const hidden = await sdk(MASTER_KEY).models.retrieve("legacy-dalle");
    expect(hidden).toMatchObject({ id: "legacy-dalle", owned_by: "openai" });
  });
});

describe("default_model", () => {
  it("serves a request without a model with the configured default", async () => {
    const r = await generate(MASTER_KEY);
    expect(r.model).toBe("image-cheap");
    expect(r.upstream).toBe("dall-e-2");
  });

  it("does the same over Connect, where an empty model is the absent one", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    let model: string | null = null;
    const answer = await client.createImage(
      { prompt: "a lighthouse" },
      {
        headers: { authorization: `Bearer ${MASTER_KEY}` },
        onHeader: (h) => {
          model = h.get("x-imagegate-model");
        },
      },
    );
    expect(answer.data.length).toBe(1);
    expect(model).toBe("image-cheap");
    expect(lastUpstreamModel()).toBe("dall-e-2");
  });
});

describe("config checks", () => {
  const catalog = loadCatalog();
  const parse = (yaml: string) => () => parseConfig(yaml, {}, catalog, "test");
  const base =
    "model_list:\n  - model_name: a\n    params: { model: openai/dall-e-2, api_key: k }\n";

  it.each([
    [
      "an alias of an unknown model",
      "router_settings:\n  model_group_alias: { x: no-such-model }\n",
      /model_group_alias\.x: 'no-such-model' is neither/,
    ],
    [
      "an alias that is also a model_name",
      "router_settings:\n  model_group_alias: { a: openai/dall-e-3 }\n",
      /model_group_alias\.a: 'a' is also a model_list model_name/,
    ],
    [
      "an alias of an alias",
      "router_settings:\n  model_group_alias: { x: y, y: a }\n",
      /model_group_alias\.x: 'y' is itself an alias/,
    ],
    [
      "an alias of itself",
      "router_settings:\n  model_group_alias: { x: x }\n",
      /model_group_alias\.x: an alias cannot name itself/,
    ],
    [
      "an unknown default model",
      "general_settings:\n  default_model: openai/no-such-model\n",
      /general_settings\.default_model: 'openai\/no-such-model' is neither/,
    ],
    [
      "an alias given as an object without a model",
      "router_settings:\n  model_group_alias: { x: { hidden: true } }\n",
      /model_group_alias/,
    ],
  ])("stops on %s", (_what, extra, message) => {
    expect(parse(base + extra)).toThrow(message);
  });

  it("takes an alias as the default model, and Azure deployment names as targets", () => {
    const config = parseConfig(
      `${base}router_settings:\n  model_group_alias: { d: a, z: azure/prod-images }\ngeneral_settings:\n  default_model: d\n`,
      {},
      catalog,
      "test",
    );
    expect(config.defaultModel).toBe("d");
    expect([...config.aliases]).toEqual([
      ["d", { target: "a", hidden: false }],
      ["z", { target: "azure/prod-images", hidden: false }],
    ]);
  });
});
