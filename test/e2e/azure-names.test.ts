/**
 * Azure deployments of any name (contract: *Cloud credentials and Azure names*): the model
 * from `base_model`, else the one the name spells, else unknown: checked only against what
 * any Azure image model accepts, passed on, counted unpriced (a budgeted key's
 * `model_not_priced` unless a price is set), and named at startup with the `base_model` hint.
 * Direct `azure/<name>` requests serve the same way.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { AZURE_KEY, type AzureStack, startAzureStack } from "../support/azure-stack.ts";

const KEY = "sk-azure-names-budgeted-0123456789";
const FREE_KEY = "sk-azure-names-free-0123456789";

function yaml(endpoint: string): string {
  const entry = (group: string, model: string, extra = "") =>
    `  - model_name: ${group}\n    params:\n      model: azure/${model}\n      api_base: ${endpoint}\n      api_key: ${AZURE_KEY}\n${extra}`;
  return `general_settings:
  spend_db: ${join(mkdtempSync(join(tmpdir(), "imagegate-azure-names-")), "spend.sqlite")}
keys:
  - key: ${KEY}
    name: team
    max_budget: 10
  - key: ${FREE_KEY}
    name: free
model_list:
${entry("spelled", "dalle3")}${entry("contract", "my-dalle3-deployment")}${entry("unknown", "prod-images")}${entry("unknown-priced", "prod-images", "    model_info:\n      id: priced\n      output_cost_per_image: 0.05\n")}`;
}

let ctx: AzureStack;
beforeAll(async () => {
  ctx = await startAzureStack((azure) => yaml(azure.endpoint), {
    dalle3: "dall-e-3",
    "my-dalle3-deployment": "dall-e-3",
    "prod-images": "gpt-image-1",
  });
});
afterAll(async () => {
  await ctx?.close();
});

async function generate(key: string, body: object) {
  const res = await fetch(`${ctx.stack.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: "a fox", response_format: "b64_json", ...body }),
  });
  const json = (await res.json()) as {
    data?: unknown[];
    error?: { code?: string; message?: string; param?: string };
  };
  return { status: res.status, json, cost: res.headers.get("x-imagegate-cost-usd") };
}

describe("config", () => {
  const catalog = loadCatalog();
  const env = { AZURE_API_KEY: "k", AZURE_API_BASE: "https://example-resource.openai.azure.com" };
  const load = (model: string, info = "") =>
    parseConfig(
      `model_list:\n  - model_name: m\n    params:\n      model: azure/${model}\n${info}`,
      env,
      catalog,
      "test.yaml",
    );

  it("takes the model the name spells, else base_model, else loads it as unknown with a warning", () => {
    expect(load("dalle3").groups.get("m")![0]!.spec.model).toBe("dall-e-3");
    expect(load("my-dalle3-deployment").groups.get("m")![0]!.spec.model).toBe("dall-e-3");
    expect(load("prod-gpt-image-1-mini").groups.get("m")![0]!.spec.model).toBe("gpt-image-1-mini");
    expect(
      load("dalle3", "    model_info:\n      base_model: gpt-image-1\n").groups.get("m")![0]!.spec
        .model,
    ).toBe("gpt-image-1");
    const unknown = load("prod-images");
    const d = unknown.groups.get("m")![0]!;
    expect(d.spec.model).toBe("prod-images");
    expect(d.unknownModel).toBe(true);
    expect(unknown.warnings.join("\n")).toMatch(
      /Azure deployment 'prod-images'.*does not name a known model.*model_info\.base_model/,
    );
    expect(load("dalle3").warnings.join("\n")).not.toContain("does not name a known model");
  });

  it("still refuses a base_model the catalog does not know", () => {
    expect(() => load("prod-images", "    model_info:\n      base_model: dall-e-9\n")).toThrow(
      /azure\/dall-e-9' is not in the model catalog/,
    );
  });
});

describe("requests", () => {
  it("serve deployments the name spells, priced as the model", async () => {
    for (const model of ["spelled", "contract"]) {
      const a = await generate(KEY, { model, size: "1792x1024" });
      expect(a.status).toBe(200);
      expect(a.json.data).toHaveLength(1);
      expect(Number(a.cost)).toBeGreaterThan(0);
    }
  });

  it("an unknown deployment: passed on, unpriced for a budgeted key unless priced", async () => {
    const free = await generate(FREE_KEY, {
      model: "unknown",
      size: "1536x1024",
      quality: "low",
      background: "opaque",
    });
    expect(free.status).toBe(200);
    const upstream = ctx.azure.requests.at(-1)!;
    expect(upstream.path).toContain("/openai/deployments/prod-images/images/generations");
    expect(upstream.body).toMatchObject({
      size: "1536x1024",
      quality: "low",
      background: "opaque",
    });
    const refused = await generate(KEY, { model: "unknown" });
    expect(refused.status).toBe(400);
    expect(refused.json.error?.code).toBe("model_not_priced");
    const priced = await generate(KEY, { model: "unknown-priced" });
    expect(priced.status).toBe(200);
    expect(Number(priced.cost)).toBeCloseTo(0.05, 10);
  });

  it("an unknown deployment still refuses what no Azure image model accepts", async () => {
    const before = ctx.azure.requests.length;
    const a = await generate(FREE_KEY, { model: "unknown", size: "333x333" });
    expect(a.status).toBe(400);
    expect(a.json.error?.param).toBe("size");
    expect(ctx.azure.requests.length).toBe(before);
  });

  it("direct azure/<name> serves whatever the deployment is called", async () => {
    for (const model of ["azure/dalle3", "azure/prod-images"]) {
      const a = await generate(FREE_KEY, { model });
      expect(a.status, `${model}: ${a.json.error?.message}`).toBe(200);
    }
    // A deployment the resource does not have is the upstream's 404, named, not a 404 model.
    const ghost = await generate(FREE_KEY, { model: "azure/no-such-deployment" });
    expect(ghost.status).toBe(502);
    expect(ghost.json.error?.code).toBe("upstream_not_found");
  });
});
