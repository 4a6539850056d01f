import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CatalogError,
  loadCatalog,
  type ModelSpec,
  parseCatalog,
  withOverrides,
} from "../../src/catalog/catalog.ts";

const catalog = loadCatalog();

function spec(model: string): ModelSpec {
  const found = catalog.lookup("openai", model);
  if (!found) throw new Error(`no catalog entry for openai/${model}`);
  return found;
}

const DALL_E_3 = `models:
  - provider: openai
    model: dall-e-3
    family: dalle
    prompt_max_chars: 4000
    n: { min: 1, max: 1 }
    upstream_max_n: 1
    size: { values: [1024x1024, 1792x1024, 1024x1792], default: 1024x1024 }
    native_response: url
`;

describe("models.yaml", () => {
  it("loads every OpenAI model", () => {
    const names = catalog
      .entries()
      .filter((e) => e.provider === "openai")
      .map((e) => `${e.provider}/${e.model}`);
    expect(names).toEqual([
      "openai/dall-e-2",
      "openai/dall-e-3",
      "openai/gpt-image-1",
      "openai/gpt-image-1-mini",
      "openai/gpt-image-1.5",
      "openai/gpt-image-2",
      "openai/gpt-image-2.5-sunburst",
      "openai/gpt-image-2.5-flare",
      "openai/gpt-image-2.6-sunburst",
      "openai/gpt-image-2.6-flare",
      "openai/chatgpt-image-latest",
    ]);
  });

  it("finds an entry by id or alias, and only under its provider", () => {
    expect(catalog.lookup("openai", "gpt-image-2-2026-04-21")).toBe(spec("gpt-image-2"));
    expect(catalog.lookup("openai", "gpt-image-2.5-flare-2026-09-08")?.model).toBe(
      "gpt-image-2.5-flare",
    );
    expect(catalog.lookup("openai", "dall-e-4")).toBeUndefined();
    // Azure's dall-e-3 is its own entry (Azure's rules), never OpenAI's.
    expect(catalog.lookup("azure", "dall-e-3")?.provider).toBe("azure");
    expect(catalog.lookup("azure", "gpt-image-2")).toBeUndefined();
  });

  it("holds the reference's limits for DALL·E", () => {
    const d2 = spec("dall-e-2");
    expect(d2.prompt_max_chars).toBe(1000);
    expect(d2.n).toMatchObject({ min: 1, max: 10 });
    expect(d2.size.values).toEqual(["256x256", "512x512", "1024x1024"]);
    expect(d2.style).toBeUndefined();

    const d3 = spec("dall-e-3");
    expect(d3).toMatchObject({
      family: "dalle",
      prompt_max_chars: 4000,
      n: { min: 1, max: 1 },
      upstream_max_n: 1,
      size: { values: ["1024x1024", "1792x1024", "1024x1792"], default: "1024x1024" },
      quality: { values: ["standard", "hd", "auto"], default: "standard" },
      style: { values: ["vivid", "natural"], default: "vivid" },
      native_response: "url",
      params: ["user", "safety_identifier"],
    });
    expect(d3.background).toBeUndefined();
    expect(d3.output_format).toBeUndefined();
  });

  it("holds the reference's limits for GPT image", () => {
    for (const model of ["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"]) {
      expect(spec(model)).toMatchObject({
        family: "gpt-image",
        prompt_max_chars: 32000,
        n: { min: 1, max: 10 },
        size: { values: ["1024x1024", "1536x1024", "1024x1536", "auto"], default: "auto" },
        native_response: "b64_json",
        background: { values: ["transparent", "opaque", "auto"] },
      });
    }
    const g2 = spec("gpt-image-2");
    expect(g2.size.rule).toEqual({
      multiple_of: 16,
      max_side: 3840,
      max_pixels: 8294400,
      min_ratio: 0.3333,
      max_ratio: 3,
    });
    expect(g2.background?.values).not.toContain("transparent");
    expect(spec("gpt-image-2.5-sunburst").quality?.values).toEqual(
      expect.arrayContaining(["xhigh", "max"]),
    );
    expect(spec("chatgpt-image-latest").size).toEqual(g2.size);
  });

  it("hands out frozen entries", () => {
    const d3 = spec("dall-e-3");
    expect(Object.isFrozen(d3)).toBe(true);
    expect(Object.isFrozen(d3.size.values)).toBe(true);
  });
});

describe("a malformed catalog", () => {
  const dir = mkdtempSync(join(tmpdir(), "imagegate-catalog-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function loadText(text: string): () => unknown {
    const path = join(dir, `models-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, text);
    return () => loadCatalog(path);
  }

  it("fails at load naming the file, the entry and the key", () => {
    const load = loadText(DALL_E_3.replace("default: 1024x1024", "default: 512x512"));
    expect(load).toThrow(CatalogError);
    expect(load).toThrow(/models-.*\.yaml/);
    expect(load).toThrow(
      "entry 0 (openai/dall-e-3), key 'size.default': '512x512' is not one of values",
    );
  });

  it("rejects an unknown key rather than ignoring it", () => {
    const load = loadText(`${DALL_E_3}    sizes: [256x256]\n`);
    expect(load).toThrow("entry 0 (openai/dall-e-3), key 'sizes': unknown key");
  });

  it("names wrong types and unknown providers", () => {
    const load = loadText(
      DALL_E_3.replace("provider: openai", "provider: openia").replace(
        "upstream_max_n: 1",
        "upstream_max_n: one",
      ),
    );
    expect(load).toThrow(/entry 0 \(openia\/dall-e-3\), key 'provider': .*"openai"/);
    expect(load).toThrow(/entry 0 \(openia\/dall-e-3\), key 'upstream_max_n': .*expected number/);
  });

  it("checks that a requirement points at a field the entry lists", () => {
    const load = loadText(
      `${DALL_E_3}    background: { values: [transparent, auto], default: auto, requires: { transparent: { output_format: [png] } } }\n`,
    );
    expect(load).toThrow(
      "key 'background.requires.transparent.output_format': 'output_format' is not an enumerated field",
    );
  });

  it("checks that a size map names listed sizes and renders every ratio it sends", () => {
    const withSize = (extra: string) =>
      loadText(DALL_E_3.replace("default: 1024x1024 }", `default: 1024x1024, ${extra} }`));
    expect(withSize("upstream: { 640x480: 1024x1024 }")).toThrow(
      "key 'size.upstream.640x480': '640x480' is not one of values",
    );
    expect(
      withSize('upstream: { 1024x1024: "1:1", 1792x1024: "16:9" }, produced: { "1:1": 1024x1024 }'),
    ).toThrow("key 'size.upstream.1792x1024': '16:9' has no produced size");
  });

  it("rejects a name used twice under one provider", () => {
    const twice = `${DALL_E_3}${DALL_E_3.replace("models:\n", "").replace("model: dall-e-3", "model: dall-e-3-hd\n    aliases: [dall-e-3]")}`;
    expect(loadText(twice)).toThrow(
      "entry 1 (openai/dall-e-3-hd), key 'aliases': 'dall-e-3' already names entry 0",
    );
  });

  it("reports YAML syntax errors with the file name", () => {
    expect(loadText("models:\n  - { provider: openai\n")).toThrow(
      /Invalid model catalog .*models-/,
    );
  });
});

describe("the schema beyond OpenAI", () => {
  it("expresses provider extras, aspect ratios and rule-based sizes", () => {
    const other = parseCatalog(`models:
  - provider: bedrock
    model: stability.sd3-5-large-v1:0
    family: sd3
    prompt_max_chars: 10000
    n: { min: 1, max: 10 }
    upstream_max_n: 1
    size: { values: [1024x1024, auto], default: 1024x1024 }
    native_response: b64_json
    output_format: { values: [png, jpeg], default: png }
    aspect_ratio: { values: ["16:9", "1:1", "9:16"], default: "1:1" }
    seed: { min: 0, max: 4294967294 }
    negative_prompt: {}
  - provider: bedrock
    model: amazon.nova-canvas-v1:0
    family: nova
    prompt_max_chars: 1024
    n: { min: 1, max: 5 }
    upstream_max_n: 5
    size:
      values: [1024x1024]
      default: 1024x1024
      rule: { multiple_of: 16, min_side: 320, max_side: 4096, max_pixels: 4194304, min_ratio: 0.25, max_ratio: 4 }
    quality: { values: [standard, premium, hd], default: standard, same_as: { hd: premium } }
    native_response: b64_json
    seed: { min: 0, max: 858993459 }
    negative_prompt: { max_chars: 1024 }
`);
    const sd3 = other.lookup("bedrock", "stability.sd3-5-large-v1:0");
    expect(sd3?.aspect_ratio?.values).toContain("16:9");
    expect(sd3?.params).toEqual([]);
    expect(other.lookup("bedrock", "amazon.nova-canvas-v1:0")?.size.rule?.min_side).toBe(320);
  });
});

describe("withOverrides", () => {
  it("merges an object key by key and leaves the catalog's entry alone", () => {
    const d2 = spec("dall-e-2");
    const merged = withOverrides(d2, { n: { max: 4 }, prompt_max_chars: 500 });
    expect(merged.n).toEqual({ min: 1, max: 4, default: 1 });
    expect(merged.prompt_max_chars).toBe(500);
    expect(merged.size).toEqual(d2.size);
    expect(d2.n.max).toBe(10);
  });

  it("checks the result and names the model and key", () => {
    const attempt = () =>
      withOverrides(spec("dall-e-3"), { size: { values: ["1024x1024"], default: "auto" } });
    expect(attempt).toThrow(CatalogError);
    expect(attempt).toThrow(/openai\/dall-e-3[\s\S]*key 'size\.default'/);
  });
});
