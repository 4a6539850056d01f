import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import type { Env } from "../../src/config/env.ts";
import { parseConfig } from "../../src/config/load.ts";
import { GatewayError } from "../../src/errors/errors.ts";
import { DEFAULT_MODEL, ModelResolver } from "../../src/router/resolve.ts";

const catalog = loadCatalog();

const ENV: Env = { OPENAI_API_KEY: "sk-env-key", OPENAI_BASE_URL: "http://127.0.0.1:4010/v1" };

const CONFIG = `
model_list:
  - model_name: image-hq
    params: { model: openai/dall-e-3, api_key: sk-hq-1 }
    model_info: { id: hq-1 }
  - model_name: image-hq
    params: { model: openai/gpt-image-1, api_key: sk-hq-2 }
    model_info: { id: hq-2 }
  - model_name: dall-e-2
    params: { model: openai/gpt-image-1-mini, api_key: sk-shadow }
    model_info: { id: shadow }
router_settings:
  timeout: 33
`;

function resolver(text = CONFIG, env: Env = ENV): ModelResolver {
  return new ModelResolver(parseConfig(text, env, catalog), catalog);
}

/** The GatewayError resolving `name` fails with; fails the test if it resolves. */
function failure(r: ModelResolver, name: string | undefined): GatewayError {
  try {
    r.resolve(name);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error(`expected '${name}' not to resolve`);
}

describe("ModelResolver", () => {
  it("resolves a model_list name to its group, deployments in order", () => {
    const group = resolver().resolve("image-hq");
    expect(group.name).toBe("image-hq");
    expect(group.deployments.map((d) => d.id)).toEqual(["hq-1", "hq-2"]);
    expect(group.deployments.map((d) => d.params.api_key)).toEqual(["sk-hq-1", "sk-hq-2"]);
  });

  it("lets a model_list name win over the catalog model of the same name", () => {
    const group = resolver().resolve("dall-e-2");
    expect(group.name).toBe("dall-e-2");
    expect(group.deployments.map((d) => d.id)).toEqual(["shadow"]);
    expect(group.deployments[0]!.model).toBe("gpt-image-1-mini");
  });

  it("resolves a direct provider/model name from the environment", () => {
    const group = resolver().resolve("openai/dall-e-3");
    expect(group.name).toBe("openai/dall-e-3");
    expect(group.deployments).toHaveLength(1);
    const d = group.deployments[0]!;
    expect(d).toMatchObject({
      id: "openai/dall-e-3",
      group: "openai/dall-e-3",
      provider: "openai",
      model: "dall-e-3",
    });
    expect(d.spec).toBe(catalog.lookup("openai", "dall-e-3"));
    expect(d.params.api_key).toBe("sk-env-key");
    expect(d.timeoutMs).toBe(33_000);
  });

  it("uses OPENAI_BASE_URL as the direct deployment's api_base", () => {
    const d = resolver().resolve("openai/gpt-image-1").deployments[0]!;
    expect(d.params.api_base).toBe("http://127.0.0.1:4010/v1");
    const withoutBase = resolver("", { OPENAI_API_KEY: "k" }).resolve("openai/gpt-image-1")
      .deployments[0]!;
    expect(withoutBase.params.api_base).toBeUndefined();
  });

  it("reads a bare OpenAI model name as openai/<name>", () => {
    const group = resolver().resolve("dall-e-3");
    expect(group.name).toBe("openai/dall-e-3");
    expect(group.deployments[0]!.provider).toBe("openai");
    expect(group.deployments[0]!.model).toBe("dall-e-3");

    const alias = resolver().resolve("gpt-image-2-2026-04-21");
    expect(alias.name).toBe("openai/gpt-image-2-2026-04-21");
    expect(alias.deployments[0]!.spec).toBe(catalog.lookup("openai", "gpt-image-2"));
  });

  it("resolves an omitted or empty model to openai/dall-e-3", () => {
    expect(DEFAULT_MODEL).toBe("openai/dall-e-3");
    for (const name of [undefined, ""]) {
      const group = resolver().resolve(name);
      expect(group.name).toBe("openai/dall-e-3");
      expect(group.deployments[0]!.model).toBe("dall-e-3");
      expect(group.deployments[0]!.spec).toBe(catalog.lookup("openai", "dall-e-3"));
    }
  });

  it("lets a model_list group named like the default answer an omitted model", () => {
    const text = `model_list:\n  - model_name: openai/dall-e-3\n    params: { model: openai/gpt-image-1, api_key: k }\n    model_info: { id: custom-default }\n`;
    const group = resolver(text).resolve(undefined);
    expect(group.name).toBe("openai/dall-e-3");
    expect(group.deployments.map((d) => d.id)).toEqual(["custom-default"]);
  });

  it("returns the same group for repeated direct names", () => {
    const r = resolver();
    expect(r.resolve("openai/dall-e-3")).toBe(r.resolve("openai/dall-e-3"));
  });

  it.each([
    "image-lq",
    "openai/dall-e-4",
    "dall-e-4",
    "midjourney/v6",
    "openai/",
    "/dall-e-3",
    "OpenAI/dall-e-3",
    "recraft/not-a-model",
    "image-hq ",
  ])("answers model_not_found for %j, with param model", (name) => {
    const e = failure(resolver(), name);
    expect(e.kind).toBe("model_not_found");
    expect(e.param).toBe("model");
    expect(e.message).toContain(`'${name}'`);
  });

  it("says which variable is missing for a direct name without OPENAI_API_KEY", () => {
    const r = resolver("", { OPENAI_BASE_URL: "http://127.0.0.1:4010/v1" });
    for (const name of ["openai/dall-e-3", "gpt-image-1", undefined]) {
      const e = failure(r, name);
      expect(e.kind).toBe("invalid_request");
      expect(e.code).toBe("model_not_configured");
      expect(e.param).toBe("model");
      expect(e.message).toContain("OPENAI_API_KEY");
    }
    // An empty variable counts as unset.
    expect(failure(resolver("", { OPENAI_API_KEY: "" }), "openai/dall-e-3").code).toBe(
      "model_not_configured",
    );
  });

  it("still serves model_list groups without OPENAI_API_KEY", () => {
    const r = resolver(CONFIG, {});
    expect(r.resolve("image-hq").deployments.map((d) => d.params.api_key)).toEqual([
      "sk-hq-1",
      "sk-hq-2",
    ]);
  });

  it("never puts the environment's key in an error", () => {
    const r = resolver("", { OPENAI_API_KEY: "sk-LEAKCHECK-abc123" });
    for (const name of ["openai/dall-e-4", "nope", "azure/x"]) {
      expect(failure(r, name).message).not.toContain("LEAKCHECK");
    }
  });
});
