/**
 * The catalog's lifecycle data: its schema (dates, a successor the catalog knows, a source),
 * where a model stands on a given day, the startup warnings a config gets for the models it
 * uses, and the shipped data (every retired model names where that was read).
 */
import { describe, expect, it } from "vitest";
import { CatalogError, loadCatalog, parseCatalog } from "../../src/catalog/catalog.ts";
import { lifecycleState, NEAR_SHUTDOWN_DAYS } from "../../src/catalog/lifecycle.ts";
import { parseConfig } from "../../src/config/load.ts";

const DAY = 24 * 60 * 60 * 1000;

/** YYYY-MM-DD `days` from today (UTC). */
function fromToday(days: number): string {
  return new Date(Date.now() + days * DAY).toISOString().slice(0, 10);
}

function entry(model: string, lifecycle = ""): string {
  return `  - provider: openai
    model: ${model}
    family: dalle
    n: { min: 1, max: 1 }
    upstream_max_n: 1
    size: { values: [1024x1024], default: 1024x1024 }
    native_response: url
${lifecycle}`;
}

function life(fields: Record<string, string>): string {
  const lines = Object.entries({
    source: "https://example.com/deprecations",
    checked: "2026-12-02",
    ...fields,
  }).map(([k, v]) => `      ${k}: "${v}"`);
  return `    lifecycle:\n${lines.join("\n")}\n`;
}

function catalogOf(...entries: string[]) {
  return parseCatalog(`models:\n${entries.join("")}`);
}

describe("lifecycle: the schema", () => {
  it("loads dates, successor, source and note", () => {
    const c = catalogOf(
      entry("old", life({ deprecated: "2026-01-02", shutdown: "2026-05-12", successor: "new" })),
      entry("new"),
    );
    expect(c.lookup("openai", "old")?.lifecycle).toEqual({
      deprecated: "2026-01-02",
      shutdown: "2026-05-12",
      successor: "new",
      source: "https://example.com/deprecations",
      checked: "2026-12-02",
    });
  });

  it("refuses a successor the catalog does not know, naming entry and key", () => {
    expect(() =>
      catalogOf(entry("old", life({ shutdown: "2026-05-12", successor: "nope" }))),
    ).toThrow(/entry 0 \(openai\/old\), key 'lifecycle\.successor': 'nope' is not a openai model/);
  });

  it.each([
    [{ shutdown: "2026-13-45" }, /lifecycle\.shutdown/],
    [{ shutdown: "12 May 2026" }, /lifecycle\.shutdown': must be a date YYYY-MM-DD/],
    [{ successor: "x" }, /give `deprecated`, `shutdown` or both/],
    [{ shutdown: "2026-05-12", source: "not a url" }, /lifecycle\.source/],
  ])("refuses %o", (fields, message) => {
    expect(() => catalogOf(entry("old", life(fields)))).toThrow(CatalogError);
    expect(() => catalogOf(entry("old", life(fields)))).toThrow(message);
  });
});

describe("lifecycle: where a model stands", () => {
  const today = new Date("2026-12-02T15:00:00Z");
  const c = catalogOf(
    entry("gone", life({ shutdown: "2026-12-02" })),
    entry("soon", life({ shutdown: "2026-12-12" })),
    entry("later", life({ deprecated: "2026-12-03", shutdown: "2027-06-01" })),
    entry("deprecated", life({ deprecated: "2026-10-06", shutdown: "2027-04-07" })),
    entry("current"),
  );
  const state = (m: string) => lifecycleState(c.lookup("openai", m)!, today);

  it("is retired from its shutdown day on", () => {
    expect(state("gone")).toEqual({ state: "retired", shutdown: "2026-12-02" });
  });
  it(`is retiring within ${NEAR_SHUTDOWN_DAYS} days`, () => {
    expect(state("soon")).toEqual({ state: "retiring", shutdown: "2026-12-12", days: 10 });
  });
  it("is deprecated once the deprecation date has passed, with a shutdown far off", () => {
    expect(state("deprecated")).toEqual({ state: "deprecated", deprecated: "2026-10-06" });
  });
  it("says nothing before any date matters, nor without data", () => {
    expect(state("later")).toBeUndefined();
    expect(state("current")).toBeUndefined();
  });
});

describe("lifecycle: startup warnings", () => {
  const c = catalogOf(
    entry("gone", life({ shutdown: fromToday(-30), successor: "current", note: "a 3p date" })),
    entry("soon", life({ shutdown: fromToday(14) })),
    entry("far", life({ shutdown: fromToday(400) })),
    entry("current"),
  );
  const config = (models: string[], source = "test") =>
    parseConfig(
      `model_list:\n${models
        .map(
          (m, i) =>
            `  - model_name: ${m === "gone" ? "public" : m}\n    params: { model: openai/${m}, api_key: k }\n    model_info: { id: d${i} }\n`,
        )
        .join("")}`,
      {},
      c,
      source,
    ).warnings;

  it("names the public name, deployment, date, successor, note and source of a retired model", () => {
    expect(config(["gone"])).toEqual([
      `config: model 'public' (deployment d0, openai/gone): openai shut gone down on ${fromToday(-30)} (requests still go to it; its "no such model" is a 404 naming the successor); successor: openai/current (a 3p date); source: https://example.com/deprecations (checked 2026-12-02)`,
    ]);
  });

  it("counts the days to a near shutdown; a far one and a current model say nothing", () => {
    expect(config(["soon", "far", "current"])).toEqual([
      `config: model 'soon' (deployment d0, openai/soon): openai shuts soon down on ${fromToday(14)} (in 14 days); source: https://example.com/deprecations (checked 2026-12-02)`,
    ]);
  });

  it("says it once per upstream model, listing every deployment", () => {
    const warnings = parseConfig(
      `model_list:
  - { model_name: a, params: { model: openai/soon, api_key: k }, model_info: { id: one } }
  - { model_name: b, params: { model: openai/soon, api_key: k2 }, model_info: { id: two } }
`,
      {},
      c,
      "test",
    ).warnings;
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("model 'a', 'b' (deployments one, two, openai/soon)");
  });

  it("dev (every model emulated) says it in one line", () => {
    const warnings = config(["gone", "soon", "far", "current"], "dev");
    expect(warnings).toEqual([
      "dev: 2 catalog models are retired, retiring or deprecated at their providers (openai/gone, openai/soon); the emulators still serve them (see each provider page's lifecycle table)",
    ]);
  });
});

describe("lifecycle: the shipped catalog", () => {
  const catalog = loadCatalog();
  it("gives every retired model a source and a check date, and its successor is current", () => {
    const today = new Date();
    const retired = catalog.entries().filter((e) => e.lifecycle !== undefined);
    expect(retired.length).toBeGreaterThan(20);
    for (const e of retired) {
      expect(e.lifecycle!.source).toMatch(/^https:\/\//);
      const successor = e.lifecycle!.successor;
      if (successor === undefined) continue;
      const next = catalog.lookup(e.provider, successor)!;
      // A successor that is itself retired would send clients from one dead model to another.
      expect(
        lifecycleState(next, today)?.state,
        `${e.provider}/${e.model} → ${successor}`,
      ).not.toBe("retired");
    }
  });

  it("marks the contract's default model shut down at OpenAI", () => {
    expect(catalog.lookup("openai", "dall-e-3")?.lifecycle).toMatchObject({
      shutdown: "2026-05-12",
      successor: "gpt-image-2.5-sunburst",
    });
  });
});
