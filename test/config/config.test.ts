import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import type { Deployment } from "../../src/config/deployment.ts";
import { ConfigError, type Env } from "../../src/config/env.ts";
import {
  DEFAULT_HOST,
  DEFAULT_PORT,
  type GatewayConfig,
  parseConfig,
} from "../../src/config/load.ts";

const catalog = loadCatalog();

/** A key value distinctive enough that finding it anywhere means it leaked. */
const SECRET = "sk-proj-LEAKCHECK-7f3a9c2e51d04b8e";

function load(text: string, env: Env = {}): GatewayConfig {
  return parseConfig(text, env, catalog);
}

/** The ConfigError `text` fails with; fails the test if it loads or throws anything else. */
function configError(text: string, env: Env = {}): ConfigError {
  try {
    load(text, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected the config to be rejected, but it loaded");
}

function group(config: GatewayConfig, name: string): readonly Deployment[] {
  const deployments = config.groups.get(name);
  if (deployments === undefined) throw new Error(`no model group '${name}'`);
  return deployments;
}

function only(config: GatewayConfig, name: string): Deployment {
  const deployments = group(config, name);
  expect(deployments).toHaveLength(1);
  return deployments[0]!;
}

/** One `model_list` entry with the given params lines (already indented by six spaces). */
function entry(modelName: string, ...params: string[]): string {
  return `  - model_name: ${modelName}\n    params:\n${params.map((p) => `      ${p}\n`).join("")}`;
}

// The contract's example config, restricted to the providers the catalog knows today
// (OpenAI); the fallback points at a second OpenAI group instead of imagen/sdxl.
const CONTRACT_EXAMPLE = `
model_list:
  - model_name: image-hq                  # the public name clients send as \`model\`
    params:                               # alias: litellm_params
      model: openai/dall-e-3              # provider/upstream-model
      api_key: os.environ/OPENAI_API_KEY
      api_base: https://api.openai.com/v1 # optional; every provider honours it
      weight: 2                           # load-balancing weight
      rpm: 60                             # requests per minute this deployment may take
      max_parallel_requests: 8
      timeout: 120                        # seconds
    model_info:
      id: openai-eu-1                     # deployment id (generated when absent)
      output_cost_per_image: 0.04         # optional price override
  - model_name: image-fast
    params:
      model: openai/gpt-image-1-mini
      api_key: os.environ/OPENAI_API_KEY
router_settings:
  routing_strategy: simple-shuffle        # | least-busy | latency-based-routing
  num_retries: 2
  timeout: 120
  allowed_fails: 3
  cooldown_time: 30
  fallbacks: [{ image-hq: [image-fast] }]
  content_policy_fallbacks: []            # empty: a safety refusal is returned, not routed around
server:
  host: 127.0.0.1
  port: 8080
  public_url: https://images.example.com/  # base of the URLs the gateway hands out
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY  # admits every model
keys:
  - key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    name: team-a
    models: [image-hq, imagen]
    rpm_limit: 120
    max_budget: 25.0
`;

describe("parseConfig: the contract's example", () => {
  const env = { OPENAI_API_KEY: "sk-from-env", IMAGEGATE_MASTER_KEY: "mk-from-env" };

  it("loads every section", () => {
    const config = load(CONTRACT_EXAMPLE, env);
    expect([...config.groups.keys()]).toEqual(["image-hq", "image-fast"]);

    const hq = only(config, "image-hq");
    expect(hq).toMatchObject({
      id: "openai-eu-1",
      group: "image-hq",
      provider: "openai",
      model: "dall-e-3",
      weight: 2,
      timeoutMs: 120_000,
      costPerImage: 0.04,
    });
    expect(hq.spec).toBe(catalog.lookup("openai", "dall-e-3"));
    expect(hq.params).toMatchObject({
      model: "openai/dall-e-3",
      api_key: "sk-from-env",
      api_base: "https://api.openai.com/v1",
      rpm: 60,
      max_parallel_requests: 8,
      timeout: 120,
    });

    const fast = only(config, "image-fast");
    expect(fast.spec).toBe(catalog.lookup("openai", "gpt-image-1-mini"));
    expect(fast.weight).toBe(1);
    expect(fast.costPerImage).toBeUndefined();

    expect(config.router).toMatchObject({
      routing_strategy: "simple-shuffle",
      num_retries: 2,
      timeout: 120,
      allowed_fails: 3,
      cooldown_time: 30,
      fallbacks: [{ "image-hq": ["image-fast"] }],
      content_policy_fallbacks: [],
    });
    expect(config.server).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      publicUrl: "https://images.example.com", // trailing slash dropped
      tls: undefined,
    });
    expect(config.masterKey).toBe("mk-from-env");
    expect(config.keys).toEqual([
      {
        key_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        name: "team-a",
        models: ["image-hq", "imagen"],
        rpm_limit: 120,
        max_budget: 25,
      },
    ]);
    // Both models are shut down upstream: startup says so, naming group, deployment, date,
    // successor and source; nothing else is worth a warning.
    expect(config.warnings).toEqual([
      expect.stringMatching(
        /^config: model 'image-hq' \(deployment openai-eu-1, openai\/dall-e-3\): openai shut dall-e-3 down on 2026-05-12 .*successor: openai\/gpt-image-2\.5-sunburst .*source: https:\/\/developers\.openai\.com\/api\/docs\/models\/dall-e-3 \(checked \d{4}-\d{2}-\d{2}\)$/,
      ),
      expect.stringMatching(
        /^config: model 'image-fast' \(deployment image-fast-\w+, openai\/gpt-image-1-mini\): openai shut gpt-image-1-mini down on 2026-12-01 .*successor: openai\/gpt-image-2\.6-sunburst/,
      ),
    ]);
    expect(config.env).toBe(env);
  });

  it("loads an empty file, and an absent or empty model_list, with defaults", () => {
    for (const text of ["", "model_list:\n", "model_list: []\n", "# only a comment\n"]) {
      const config = load(text);
      expect(config.groups.size).toBe(0);
      expect(config.server.host).toBe(DEFAULT_HOST);
      expect(config.server.port).toBe(DEFAULT_PORT);
      expect(config.server.publicUrl).toBeUndefined();
      expect(config.masterKey).toBeUndefined();
      expect(config.keys).toEqual([]);
      expect(config.rehostUrls).toBe(false);
    }
  });

  it("rejects a top level that is not a mapping", () => {
    expect(configError("- a\n- b\n").message).toMatch(/top level must be a mapping/);
  });
});

describe("parseConfig: environment references", () => {
  it(`substitutes os.environ/NAME and \${NAME}`, () => {
    const config = load(
      `model_list:\n${entry("a", "model: os.environ/THE_MODEL", `api_key: \${THE_KEY}`)}`,
      { THE_MODEL: "openai/dall-e-2", THE_KEY: "sk-subst" },
    );
    const d = only(config, "a");
    expect(d.model).toBe("dall-e-2");
    expect(d.params.api_key).toBe("sk-subst");
  });

  it(`substitutes several \${NAME} embedded in one value`, () => {
    const config = load(
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: k", `api_base: "https://\${HOST_A}-\${HOST_B}.example.com/v1"`)}`,
      { HOST_A: "eu", HOST_B: "west" },
    );
    expect(only(config, "a").params.api_base).toBe("https://eu-west.example.com/v1");
  });

  it("substitutes in model names and other sections too", () => {
    const config = load(
      `model_list:\n${entry(`\${GROUP}`, "model: openai/dall-e-3", "api_key: k")}server:\n  public_url: os.environ/PUBLIC\n`,
      { GROUP: "team-images", PUBLIC: "https://img.example.org" },
    );
    expect([...config.groups.keys()]).toEqual(["team-images"]);
    expect(config.server.publicUrl).toBe("https://img.example.org");
  });

  it("leaves os.environ/ inside a longer string alone", () => {
    const config = load(
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: xos.environ/KEY")}`,
      {
        KEY: "never-used",
      },
    );
    expect(only(config, "a").params.api_key).toBe("xos.environ/KEY");
  });

  it("makes an optional key absent when its variable is unset or empty", () => {
    for (const env of [{}, { MAYBE_BASE: "" }]) {
      const config = load(
        `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: k", "api_base: os.environ/MAYBE_BASE")}`,
        env,
      );
      const d = only(config, "a");
      expect(d.params.api_key).toBe("k");
      expect("api_base" in d.params).toBe(false);
    }
  });

  it("refuses to start open when master_key points at an unset variable", () => {
    const e = configError("general_settings:\n  master_key: os.environ/UNSET_MASTER\n");
    expect(e.message).toBe(
      "config: general_settings.master_key: environment variable UNSET_MASTER is not set",
    );
  });

  it("refuses a deployment without credentials, naming the key, its variable and the unset reference", () => {
    const e = configError(
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY")}`,
    );
    expect(e.message).toBe(
      "config: model_list[0].params: missing api_key (or OPENAI_API_KEY) (unset: TEAM_KEY)",
    );
    // The environment's OPENAI_API_KEY fills it in.
    expect(
      only(
        load(`model_list:\n${entry("a", "model: openai/dall-e-3")}`, { OPENAI_API_KEY: "sk-x" }),
        "a",
      ).params.api_key,
    ).toBe("sk-x");
  });

  it("names the key and the variable when a required key's variable is unset", () => {
    const whole = configError(`model_list:\n${entry("a", "model: os.environ/MODEL_VAR")}`);
    expect(whole.message).toContain("model_list[0].params.model");
    expect(whole.message).toContain("MODEL_VAR");
    expect(whole.message).toMatch(/not set/);

    const embedded = configError(
      `model_list:\n${entry("a", "model: openai/dall-e-3")}  - model_name: "\${TEAM}-images"\n    params:\n      model: openai/dall-e-3\n`,
      {},
    );
    expect(embedded.message).toContain("model_list[1].model_name");
    expect(embedded.message).toContain("TEAM");
  });
});

describe("parseConfig: params", () => {
  it("accepts litellm_params as an alias of params", () => {
    const text = `model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/dall-e-3\n      api_key: sk-lite\n      timeout: 7\n`;
    const d = only(load(text), "a");
    expect(d.model).toBe("dall-e-3");
    expect(d.params.api_key).toBe("sk-lite");
    expect(d.timeoutMs).toBe(7000);
  });

  it("rejects an entry with both params and litellm_params, and one with neither", () => {
    const both = configError(
      `model_list:\n  - model_name: a\n    params: { model: openai/dall-e-3 }\n    litellm_params: { model: openai/dall-e-2 }\n`,
    );
    expect(both.message).toContain("model_list[0]");
    expect(both.message).toContain("params");
    expect(both.message).toContain("litellm_params");

    const neither = configError(`model_list:\n  - model_name: a\n`);
    expect(neither.message).toContain("model_list[0]");
    expect(neither.message).toMatch(/exactly one of `params` or `litellm_params`/);
  });

  it("names a typo'd key in an entry", () => {
    const e = configError(
      `model_list:\n  - modle_name: a\n    params: { model: openai/dall-e-3 }\n`,
    );
    expect(e.message).toContain("model_list[0]");
    expect(e.message).toContain("'modle_name'");
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it("names a typo'd key in params", () => {
    const e = configError(
      `model_list:\n${entry("a", "model: openai/dall-e-3", `api_kye: ${SECRET}`)}`,
    );
    expect(e.message).toContain("model_list[0].params");
    expect(e.message).toContain("'api_kye'");
    expect(e.message.split("\n")).toHaveLength(1);

    const lite = configError(
      `model_list:\n  - model_name: a\n    litellm_params: { model: openai/dall-e-3, wieght: 2 }\n`,
    );
    expect(lite.message).toContain("model_list[0].litellm_params");
    expect(lite.message).toContain("'wieght'");
  });

  it("names a typo'd key in server and an unknown top-level section", () => {
    expect(configError("server:\n  prot: 8080\n").message).toMatch(/server.*'prot'/);
    expect(configError("model_lsit: []\n").message).toContain("'model_lsit'");
  });

  it("names the key of a value of the wrong type", () => {
    expect(
      configError(`model_list:\n${entry("a", "model: openai/dall-e-3", "weight: heavy")}`).message,
    ).toContain("model_list[0].params.weight");
    expect(configError("router_settings:\n  routing_strategy: round-robin\n").message).toContain(
      "router_settings.routing_strategy",
    );
    expect(configError("server:\n  port: 70000\n").message).toContain("server.port");
  });

  it("rejects a model without a known provider prefix", () => {
    const unknown = configError(`model_list:\n${entry("a", "model: midjourney/v6")}`);
    expect(unknown.message).toContain("model_list[0].params.model");
    expect(unknown.message).toContain("midjourney/v6");
    expect(unknown.message).toContain("openai/");
    expect(unknown.message).toContain("vertex_ai/");

    const bare = configError(`model_list:\n${entry("a", "model: dall-e-3")}`);
    expect(bare.message).toContain("model_list[0].params.model");
    expect(bare.message).toMatch(/provider\/upstream-model/);
  });

  it("rejects a model the catalog does not know, listing that provider's models", () => {
    const e = configError(`model_list:\n${entry("a", "model: openai/dall-e-4")}`);
    expect(e.message).toContain("model_list[0].params.model");
    expect(e.message).toContain("openai/dall-e-4");
    expect(e.message).toContain("not in the model catalog");
    for (const known of ["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2"])
      expect(e.message).toContain(known);
  });

  it("maps a custom upstream id to a catalog entry through model_info.base_model", () => {
    const text = `model_list:\n${entry("ft", "model: openai/my-dalle-snapshot", "api_key: k")}    model_info:\n      base_model: dall-e-3\n`;
    const d = only(load(text), "ft");
    expect(d.model).toBe("my-dalle-snapshot");
    expect(d.spec).toBe(catalog.lookup("openai", "dall-e-3"));
  });

  it("resolves a catalog alias to its entry", () => {
    const d = only(
      load(`model_list:\n${entry("a", "model: openai/gpt-image-2-2026-04-21", "api_key: k")}`),
      "a",
    );
    expect(d.model).toBe("gpt-image-2-2026-04-21");
    expect(d.spec).toBe(catalog.lookup("openai", "gpt-image-2"));
  });
});

describe("parseConfig: deployments", () => {
  it("uses model_info.id as the deployment id", () => {
    const text = `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: k")}    model_info: { id: my-deployment }\n`;
    expect(only(load(text), "a").id).toBe("my-deployment");
  });

  it("generates ids that are stable across loads, differ between entries and ignore the key", () => {
    const text = (key: string) =>
      `model_list:\n` +
      entry("a", "model: openai/dall-e-3", `api_key: ${key}`) +
      entry(
        "a",
        "model: openai/dall-e-3",
        `api_key: ${key}`,
        "api_base: https://eu.example.com/v1",
      ) +
      entry("a", "model: openai/dall-e-2", `api_key: ${key}`) +
      entry("b", "model: openai/dall-e-3", `api_key: ${key}`);
    const ids = (config: GatewayConfig) => [...config.groups.values()].flat().map((d) => d.id);
    const first = ids(load(text("k1")));
    const second = ids(load(text("k1")));
    expect(second).toEqual(first);
    expect(new Set(first).size).toBe(4);
    // Rotating the key keeps the ids (secrets never enter the id).
    expect(ids(load(text(SECRET)))).toEqual(first);
    for (const id of first) expect(id).not.toContain("k1");
    expect(first[0]).toMatch(/^a-[0-9a-f]{8}$/);
    expect(first[3]).toMatch(/^b-[0-9a-f]{8}$/);
  });

  it("gives distinct ids to entries that differ only in their credentials", () => {
    const text = `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: sk-org-one")}${entry("a", "model: openai/dall-e-3", "api_key: sk-org-two")}`;
    const config = load(text);
    const [one, two] = group(config, "a");
    expect(one!.id).not.toBe(two!.id);
    expect(one!.params.api_key).toBe("sk-org-one");
    expect(two!.params.api_key).toBe("sk-org-two");
    // Still stable from one load to the next.
    expect(group(load(text), "a").map((d) => d.id)).toEqual([one!.id, two!.id]);
  });

  it("makes a generated id safe for headers and metrics", () => {
    const d = only(
      load(`model_list:\n${entry('"Team A / HQ"', "model: openai/dall-e-3", "api_key: k")}`),
      "Team A / HQ",
    );
    expect(d.id).toMatch(/^[A-Za-z0-9._-]+$/);
  });

  it("rejects duplicate deployment ids, naming the entry", () => {
    const text =
      `model_list:\n` +
      `${entry("a", "model: openai/dall-e-3", "api_key: k")}    model_info: { id: same }\n` +
      `${entry("b", "model: openai/dall-e-2", "api_key: k")}    model_info: { id: same }\n`;
    const e = configError(text);
    expect(e.message).toContain("model_list[1].model_info.id");
    expect(e.message).toContain("'same'");
  });

  it("groups deployments of one model_name in file order", () => {
    const text =
      `model_list:\n` +
      `${entry("hq", "model: openai/dall-e-3", "api_key: k")}    model_info: { id: hq-1 }\n` +
      `${entry("fast", "model: openai/gpt-image-1-mini", "api_key: k")}    model_info: { id: fast-1 }\n` +
      `${entry("hq", "model: openai/gpt-image-1", "api_key: k")}    model_info: { id: hq-2 }\n` +
      `${entry("hq", "model: openai/gpt-image-1.5", "api_key: k")}    model_info: { id: hq-3 }\n`;
    const config = load(text);
    expect([...config.groups.keys()]).toEqual(["hq", "fast"]);
    expect(group(config, "hq").map((d) => d.id)).toEqual(["hq-1", "hq-2", "hq-3"]);
    expect(group(config, "hq").map((d) => d.model)).toEqual([
      "dall-e-3",
      "gpt-image-1",
      "gpt-image-1.5",
    ]);
    expect(group(config, "fast").map((d) => d.id)).toEqual(["fast-1"]);
  });

  it("takes timeouts from the deployment, then router_settings, then 120 s", () => {
    const list = `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: k", "timeout: 15")}${entry("b", "model: openai/dall-e-3", "api_key: k")}${entry("c", "model: openai/dall-e-3", "api_key: k", "timeout: 0.5")}`;
    const withRouter = load(`${list}router_settings:\n  timeout: 45\n`);
    expect(only(withRouter, "a").timeoutMs).toBe(15_000);
    expect(only(withRouter, "b").timeoutMs).toBe(45_000);
    expect(only(withRouter, "c").timeoutMs).toBe(500);
    const without = load(list);
    expect(only(without, "b").timeoutMs).toBe(120_000);
    expect(configError(`${list}router_settings:\n  timeout: 0\n`).message).toContain(
      "router_settings.timeout",
    );
  });
});

describe("parseConfig: server", () => {
  const server = "server:\n  host: 10.0.0.5\n  port: 9000\n";

  it("reads host and port from the file", () => {
    expect(load(server).server).toMatchObject({ host: "10.0.0.5", port: 9000 });
  });

  it("lets PORT and HOST override server.port and server.host", () => {
    expect(load(server, { PORT: "7001" }).server).toMatchObject({ host: "10.0.0.5", port: 7001 });
    expect(load(server, { HOST: "0.0.0.0" }).server).toMatchObject({ host: "0.0.0.0", port: 9000 });
    expect(load("", { PORT: "0", HOST: "::1" }).server).toMatchObject({ host: "::1", port: 0 });
  });

  it("rejects a PORT that is not a port number, naming PORT", () => {
    for (const bad of ["http", "70000", "-1", "80.5"]) {
      const e = configError(server, { PORT: bad });
      expect(e.message).toContain("PORT");
      expect(e.message).toContain(bad);
    }
  });

  it("reads tls and the body limit", () => {
    const config = load(
      "server:\n  tls: { cert_file: /c.pem, key_file: /k.pem }\n  max_body_bytes: 1024\n",
    );
    expect(config.server.tls).toEqual({ certFile: "/c.pem", keyFile: "/k.pem" });
    expect(config.server.maxBodyBytes).toBe(1024);
  });
});

describe("parseConfig: YAML and LiteLLM compatibility", () => {
  it("names the line of invalid YAML", () => {
    const e = configError(
      `model_list:\n  - model_name: a\n    params:\n      model: "openai/dall-e-3\n`,
    );
    expect(e.message).toMatch(/invalid YAML/);
    expect(e.message).toMatch(/line \d+/);
    const bad = configError("router_settings:\n  num_retries: 2\n timeout: 3\n");
    expect(bad.message).toMatch(/invalid YAML at line 3/);
  });

  it("warns about LiteLLM sections and params that mean nothing here, without failing", () => {
    const text =
      `model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/gpt-image-2\n      api_key: k\n      tpm: 100000\n` +
      `litellm_settings:\n  drop_params: true\n  success_callback: [langfuse]\n` +
      `environment_variables:\n  SOME: value\n` +
      `general_settings:\n  database_url: postgres://x\n`;
    const config = load(text);
    expect(config.groups.has("a")).toBe(true);
    expect(config.warnings).toHaveLength(3);
    expect(config.warnings.some((w) => w.includes("litellm_settings"))).toBe(true);
    expect(config.warnings.some((w) => w.includes("environment_variables"))).toBe(true);
    expect(config.warnings.some((w) => w.includes("model_list[0].litellm_params.tpm"))).toBe(true);
  });
});

describe("parseConfig: credentials", () => {
  it("fills only what the entry leaves out from the environment", () => {
    const env = { OPENAI_API_KEY: "sk-env", OPENAI_BASE_URL: "http://127.0.0.1:9999/v1" };
    const text =
      `model_list:\n` +
      entry(
        "own",
        "model: openai/dall-e-3",
        "api_key: sk-own",
        "api_base: https://own.example.com/v1",
      ) +
      entry("inherit", "model: openai/dall-e-3");
    const config = load(text, env);
    expect(only(config, "own").params).toMatchObject({
      api_key: "sk-own",
      api_base: "https://own.example.com/v1",
    });
    expect(only(config, "inherit").params).toMatchObject({
      api_key: "sk-env",
      api_base: "http://127.0.0.1:9999/v1",
    });
  });

  it("prefers the deployment's own key over OPENAI_API_KEY when both come from the environment", () => {
    const config = load(
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY")}`,
      {
        TEAM_KEY: "sk-team",
        OPENAI_API_KEY: "sk-global",
      },
    );
    expect(only(config, "a").params.api_key).toBe("sk-team");
  });

  it("falls back to OPENAI_API_KEY when the entry's own variable is unset", () => {
    const config = load(
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY")}`,
      {
        OPENAI_API_KEY: "sk-global",
      },
    );
    expect(only(config, "a").params.api_key).toBe("sk-global");
  });

  it("never puts a key in a ConfigError message", () => {
    const env = { OPENAI_API_KEY: SECRET, TEAM_KEY: SECRET, IMAGEGATE_MASTER_KEY: SECRET };
    const broken = [
      // Invalid YAML on the line that holds the key, and right after it.
      `model_list:\n  - model_name: a\n    params:\n      model: openai/dall-e-3\n      api_key: "${SECRET}\n`,
      `model_list:\n  - model_name: a\n    params:\n      model: openai/dall-e-3\n      api_key: ${SECRET}: x\n`,
      `model_list:\n  - model_name: a\n    params:\n      api_key: ${SECRET}\n     model: openai/dall-e-3\n`,
      `model_list:\n  - model_name: a\n    params: { model: openai/dall-e-3, api_key: [${SECRET}] }\n`,
      `model_list:\n  - model_name: a\n    params: { model: openai/dall-e-3, api_key: { ${SECRET}: 1 } }\n`,
      // Keys put where other values belong.
      `model_list:\n${entry("a", "model: openai/dall-e-3", `weight: ${SECRET}`)}`,
      `model_list:\n${entry("a", "model: openai/dall-e-3", `api_base: ${SECRET}`)}`,
      `model_list:\n${entry("a", "model: openai/dall-e-3", `api_version: ""`, `api_key: ${SECRET}`)}`,
      `router_settings:\n  routing_strategy: ${SECRET}\n`,
      `server:\n  port: ${SECRET}\n`,
      `keys:\n  - key_sha256: ${SECRET}\n    name: a\n`,
      `keys:\n  - key: ${SECRET}\n    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n    name: a\n`,
      // Keys read from the environment, with a problem elsewhere in the same entry.
      `model_list:\n${entry("a", "model: openai/dall-e-4", "api_key: os.environ/TEAM_KEY")}`,
      `model_list:\n${entry("a", "model: nope/dall-e-3", `api_key: \${TEAM_KEY}`)}`,
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY", "api_kye: os.environ/TEAM_KEY")}`,
      `general_settings:\n  master_key: os.environ/IMAGEGATE_MASTER_KEY\n  rehost_urls: maybe\n`,
      `model_list:\n${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY")}${entry("a", "model: openai/dall-e-3", "api_key: os.environ/TEAM_KEY")}    model_info: { id: "" }\n`,
      // The same key twice, or the master key as a team key.
      `keys:\n  - key: os.environ/TEAM_KEY\n    name: a\n  - key: ${SECRET}\n    name: b\n`,
      `general_settings:\n  master_key: os.environ/IMAGEGATE_MASTER_KEY\nkeys:\n  - key: os.environ/TEAM_KEY\n    name: a\n`,
    ];
    for (const text of broken) {
      const e = configError(text, env);
      expect(e.message, text).not.toContain(SECRET);
      expect(e.message, text).not.toContain("LEAKCHECK");
    }
  });
});

describe("keys", () => {
  const key = (name: string, secret: string) => `  - key: ${secret}\n    name: ${name}\n`;

  it("refuses two keys with one name: spend, limits and logs could not tell them apart", () => {
    const e = configError(`keys:\n${key("team-a", "sk-one-0001")}${key("team-a", "sk-two-0002")}`);
    expect(e.message).toBe(
      "config: keys[1].name: 'team-a' is also the name of keys[0]; key names must be unique",
    );
  });

  it("refuses a key named like the master key, with or without a master key", () => {
    for (const master of ["", "general_settings:\n  master_key: sk-master-0000\n"]) {
      const e = configError(`${master}keys:\n${key("master", "sk-one-0001")}`);
      expect(e.message).toMatch(/^config: keys\[0\]\.name: 'master' is the master key's name/);
    }
  });

  it("refuses the same key twice (by key or digest) and the master key as a team key", () => {
    const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
    const twice = configError(
      `keys:\n${key("a", "test")}  - key_sha256: ${digest.toUpperCase()}\n    name: b\n`,
    );
    expect(twice.message).toBe(
      "config: keys[1] ('b') is the same key as keys[0] ('a'); each key must be different",
    );
    const master = configError(
      `general_settings:\n  master_key: sk-master-0000\nkeys:\n${key("a", "sk-master-0000")}`,
    );
    expect(master.message).toBe("config: keys[0] ('a') is the master key; give it its own key");
  });

  it("loads distinct names and keys", () => {
    const config = load(`keys:\n${key("a", "sk-one-0001")}${key("b", "sk-two-0002")}`);
    expect(config.keys.map((k) => k.name)).toEqual(["a", "b"]);
  });
});
