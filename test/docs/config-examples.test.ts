/**
 * Every YAML config example in the README and the provider pages loads: the docs cannot
 * drift from what the gateway accepts. Variables the examples reference are given
 * placeholder values.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";

const catalog = loadCatalog();
const root = new URL("../../", import.meta.url);
const docs = [
  "README.md",
  ...readdirSync(new URL("docs/providers/", root)).map((f) => `docs/providers/${f}`),
];

/** The fenced YAML blocks, dedented (a block inside a list item is indented). */
function yamlBlocks(text: string): string[] {
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => {
    const lines = m[1]!.split("\n");
    const indent = Math.min(
      ...lines.filter((l) => l.trim() !== "").map((l) => l.length - l.trimStart().length),
    );
    return lines.map((l) => l.slice(indent)).join("\n");
  });
}

/** A value for every variable an example reads; each its own (two keys may not be the same key). */
function envFor(yaml: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of yaml.matchAll(
    /os\.environ\/([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
  )) {
    const name = (m[1] ?? m[2])!;
    env[name] = `placeholder-value-123456-${name}`;
  }
  return env;
}

describe("config examples in the docs", () => {
  for (const doc of docs) {
    const blocks = yamlBlocks(readFileSync(new URL(doc, root), "utf8")).filter((b) =>
      /^(model_list|router_settings|general_settings|keys|server|storage):/m.test(b),
    );
    blocks.forEach((yaml, i) => {
      it(`${doc} #${i + 1} loads`, () => {
        // A fragment (e.g. only router_settings) is still a whole config by itself.
        expect(() => parseConfig(yaml, envFor(yaml), catalog, `${doc} #${i + 1}`)).not.toThrow();
      });
    });
  }
});
