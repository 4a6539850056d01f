/**
 * The router's decisions with a scripted adapter and a fake clock: strategies, retries,
 * cooldowns, limits, fallbacks and refusals. End-to-end routing through real clients is
 * in routing.e2e.test.ts.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { validateRequest } from "../../src/catalog/validate.ts";
import { parseConfig } from "../../src/config/load.ts";
import { GatewayError } from "../../src/errors/errors.ts";
import { upstreamError } from "../../src/errors/upstream.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import type {
  AdapterDeployment,
  GenerationResult,
  ProviderAdapter,
} from "../../src/providers/types.ts";
import { vertexAdapter } from "../../src/providers/vertex_ai/adapter.ts";
import { ModelResolver } from "../../src/router/resolve.ts";
import { type RouteListener, Router } from "../../src/router/router.ts";

const catalog = loadCatalog();
type Behaviour = (d: AdapterDeployment) => Promise<GenerationResult>;
const ok: Behaviour = async () => ({
  images: [{ bytes: new Uint8Array([1]), mimeType: "image/png" }],
  filtered: 0,
});
const fail =
  (e: () => GatewayError): Behaviour =>
  async () => {
    throw e();
  };
const serverError = () =>
  new GatewayError("upstream", "OpenAI answered 500: boom", { code: "server_error" });

function deploymentsYaml(group: string, ids: string[], extra = ""): string {
  return ids
    .map(
      (id) =>
        `  - model_name: ${group}\n    params:\n      model: openai/dall-e-2\n      api_key: k\n      api_base: http://127.0.0.1:1/${id}${extra}\n    model_info:\n      id: ${id}\n`,
    )
    .join("");
}

interface Harness {
  router: Router;
  resolver: ModelResolver;
  calls: string[];
  clock: { now: number };
  sleeps: number[];
  behave: Map<string, Behaviour>;
}

function harness(yaml: string, options: { random?: () => number } = {}): Harness {
  const config = parseConfig(yaml, {}, catalog, "test");
  const resolver = new ModelResolver(config, catalog);
  const calls: string[] = [];
  const behave = new Map<string, Behaviour>();
  const clock = { now: 1_000_000 };
  const sleeps: number[] = [];
  const adapter: ProviderAdapter = {
    provider: "openai",
    generate: async ({ deployment }) => {
      calls.push(deployment.id);
      return (behave.get(deployment.id) ?? ok)(deployment);
    },
  };
  const router = new Router({
    settings: config.router,
    adapters: [adapter],
    resolver,
    validate: (d, req, name) => validateRequest(req, d.spec, name),
    now: () => clock.now,
    random: options.random,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.now += ms;
    },
  });
  return { router, resolver, calls, clock, sleeps, behave };
}

const request = (init: Partial<CreateImageRequest> = {}) =>
  create(CreateImageRequestSchema, { prompt: "a fox", ...init });
const listener = (): RouteListener & { attempts: number; fallbacks: string[] } => {
  const l = {
    attempts: 0,
    fallbacks: [] as string[],
    onAttempt() {
      l.attempts += 1;
    },
    onFallback(_from: string, to: string, reason: string) {
      l.fallbacks.push(`${to}: ${reason}`);
    },
  };
  return l;
};
const route = (h: Harness, group: string, req = request(), l = listener()) =>
  h.router.route(h.resolver.resolve(group), req, new AbortController().signal, l);

describe("simple-shuffle", () => {
  it("honours weights over the whole healthy set", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a"]).replace("api_base", "weight: 3\n      api_base")}${deploymentsYaml("g", ["b"])}`;
    let seed = 42;
    const lcg = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    const h = harness(yaml, { random: lcg });
    for (let i = 0; i < 4000; i++) await route(h, "g");
    const a = h.calls.filter((c) => c === "a").length / h.calls.length;
    expect(a).toBeGreaterThan(0.72);
    expect(a).toBeLessThan(0.78);

    // With `a` cooling down, every request goes to `b`: weights apply to the healthy set only.
    h.calls.length = 0;
    h.behave.set("a", fail(serverError));
    for (let i = 0; i < 50; i++) await route(h, "g");
    expect(h.calls.slice(-20).every((c) => c === "b")).toBe(true);
  });
});

describe("retries", () => {
  it("retries a 500 on another deployment at once, without waiting", async () => {
    const h = harness(`model_list:\n${deploymentsYaml("g", ["a", "b"])}`, { random: () => 0 });
    h.behave.set("a", fail(serverError));
    const l = listener();
    const out = await route(h, "g", request(), l);
    expect(out.deployment.id).toBe("b");
    expect(h.calls).toEqual(["a", "b"]);
    expect(l.attempts).toBe(2);
    expect(h.sleeps).toEqual([]);
  });

  it("waits for the upstream's Retry-After when no other deployment can take the retry", async () => {
    const h = harness(`model_list:\n${deploymentsYaml("g", ["a"])}`);
    let n = 0;
    h.behave.set("a", async (d) => {
      if (n++ === 0) throw new GatewayError("rate_limit", "slow down", { retryAfterSeconds: 3 });
      return ok(d);
    });
    const out = await route(h, "g");
    expect(out.deployment.id).toBe("a");
    expect(h.sleeps).toEqual([3000]);
  });

  it("backs off exponentially with jitter when there is no hint", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"])}\nrouter_settings:\n  num_retries: 2\n  allowed_fails: 10\n`,
      { random: () => 1 },
    );
    h.behave.set("a", fail(serverError));
    await expect(route(h, "g")).rejects.toMatchObject({ kind: "upstream" });
    expect(h.calls).toEqual(["a", "a", "a"]);
    expect(h.sleeps).toEqual([500, 1000]);
  });

  it("answers 429 with the hint when the hint is longer than it will wait", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"])}\nrouter_settings:\n  max_retry_wait: 10\n`,
    );
    h.behave.set(
      "a",
      fail(() => new GatewayError("rate_limit", "slow down", { retryAfterSeconds: 30 })),
    );
    const e = await route(h, "g").catch((x) => x);
    expect(e).toMatchObject({ kind: "rate_limit", retryAfterSeconds: 30 });
    expect(h.calls).toEqual(["a"]);
  });

  it("never retries a bad request or a refusal, and does not hold either against the deployment", async () => {
    const h = harness(`model_list:\n${deploymentsYaml("g", ["a", "b"])}`);
    h.behave.set(
      "a",
      fail(() => new GatewayError("content_policy", "refused")),
    );
    h.behave.set(
      "b",
      fail(() => new GatewayError("content_policy", "refused")),
    );
    await expect(route(h, "g")).rejects.toMatchObject({ kind: "content_policy" });
    expect(h.calls).toHaveLength(1);
    for (let i = 0; i < 5; i++) await route(h, "g").catch(() => {});
    h.behave.clear();
    await route(h, "g");
    expect(h.calls).toHaveLength(7); // nobody was cooled down by refusals
  });

  it("respects retry_policy per error class", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"])}\nrouter_settings:\n  num_retries: 5\n  retry_policy:\n    TimeoutErrorRetries: 0\n`,
    );
    h.behave.set(
      "a",
      fail(() => new GatewayError("timeout", "slow")),
    );
    await expect(route(h, "g")).rejects.toMatchObject({ kind: "timeout" });
    expect(h.calls).toEqual(["a"]);
  });

  it("lists every attempt when all fail", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a", "b"])}\nrouter_settings:\n  num_retries: 1\n`,
    );
    h.behave.set("a", fail(serverError));
    h.behave.set(
      "b",
      fail(() => new GatewayError("upstream", "OpenAI answered 503: busy", { httpStatus: 503 })),
    );
    const e = (await route(h, "g").catch((x) => x)) as GatewayError;
    expect(e.kind).toBe("upstream");
    expect(e.message).toMatch(/All 2 upstream attempts for 'g' failed: \[(a|b)\].*; \[(a|b)\]/);
    expect(e.attempts.map((a) => a.deployment).sort()).toEqual(["a", "b"]);
  });
});

describe("cooldowns", () => {
  it("cools a deployment after allowed_fails within a minute, then re-admits it", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a", "b"])}\nrouter_settings:\n  allowed_fails: 2\n  cooldown_time: 30\n  num_retries: 0\n`;
    const h = harness(yaml, { random: () => 0 }); // always picks the first candidate: a
    h.behave.set("a", fail(serverError));
    await route(h, "g").catch(() => {});
    await route(h, "g").catch(() => {});
    expect(h.calls).toEqual(["a", "a"]);
    await route(h, "g");
    expect(h.calls.at(-1)).toBe("b"); // a is cooling
    h.behave.clear();
    h.clock.now += 31_000;
    await route(h, "g");
    expect(h.calls.at(-1)).toBe("a"); // and back
  });

  it("rests a deployment for as long as its Retry-After says", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a", "b"])}\nrouter_settings:\n  cooldown_time: 5\n`,
      { random: () => 0 },
    );
    h.behave.set(
      "a",
      fail(() => new GatewayError("rate_limit", "slow", { retryAfterSeconds: 20 })),
    );
    await route(h, "g");
    h.behave.clear();
    h.clock.now += 10_000;
    await route(h, "g");
    expect(h.calls).toEqual(["a", "b", "b"]);
    h.clock.now += 11_000;
    await route(h, "g");
    expect(h.calls.at(-1)).toBe("a");
  });

  it("answers 429 with Retry-After = the soonest recovery when every deployment is cooling", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a", "b"])}\nrouter_settings:\n  allowed_fails: 1\n  cooldown_time: 40\n  num_retries: 1\n`;
    const h = harness(yaml);
    h.behave.set("a", fail(serverError));
    h.behave.set("b", fail(serverError));
    await route(h, "g").catch(() => {});
    h.clock.now += 5_000;
    const calls = h.calls.length;
    const e = (await route(h, "g").catch((x) => x)) as GatewayError;
    expect(h.calls.length).toBe(calls);
    expect(e.kind).toBe("rate_limit");
    expect(e.code).toBe("no_deployments_available");
    expect(e.retryAfterSeconds).toBe(35);
  });

  it("cools at once on a credentials failure, for cooldown_time", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a", "b"])}\nrouter_settings:\n  cooldown_time: 5\n`,
      { random: () => 0 },
    );
    h.behave.set(
      "a",
      fail(() => upstreamError("auth_failed", "OpenAI rejected the gateway's credentials (401)")),
    );
    await route(h, "g");
    h.behave.clear();
    await route(h, "g");
    expect(h.calls).toEqual(["a", "b", "b"]);
    h.clock.now += 6_000;
    await route(h, "g");
    expect(h.calls.at(-1)).toBe("a");
  });
});

describe("a misconfigured deployment", () => {
  // What Vertex AI's adapter answers for a deployment without a project: no call can fix it.
  const noProject = (d: AdapterDeployment) =>
    vertexAdapter.generate({
      deployment: {
        ...d,
        params: {
          vertex_credentials: JSON.stringify({
            client_email: "sa@example.iam.gserviceaccount.com",
            private_key: "unused",
            private_key_id: "k1",
          }),
        },
      },
      request: request(),
      signal: new AbortController().signal,
    });

  it("is attempted once, not retried with backoff", async () => {
    const h = harness(`model_list:\n${deploymentsYaml("g", ["a"])}`);
    h.behave.set("a", noProject);
    const e = (await route(h, "g").catch((x) => x)) as GatewayError;
    expect(e).toMatchObject({ kind: "upstream", code: "upstream_misconfigured" });
    expect(h.calls).toEqual(["a"]);
    expect(h.sleeps).toEqual([]);
  });

  it("falls back to the next group when one is configured", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a"])}${deploymentsYaml("other", ["b"])}router_settings:\n  fallbacks: [{ g: [other] }]\n`;
    const h = harness(yaml);
    h.behave.set("a", noProject);
    const out = await route(h, "g");
    expect(out.group).toBe("other");
    expect(h.calls).toEqual(["a", "b"]);
    expect(h.sleeps).toEqual([]);
  });
});

describe("limits", () => {
  it("skips a deployment at its rpm instead of queueing behind it", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a"]).replace("api_base", "rpm: 2\n      api_base")}${deploymentsYaml("g", ["b"]).replace("api_base", "rpm: 1000\n      api_base")}`;
    const h = harness(yaml, { random: () => 0.0001 });
    for (let i = 0; i < 4; i++) await route(h, "g");
    expect(h.calls.filter((c) => c === "a")).toHaveLength(2);
  });

  it("answers 429 when every deployment is at its limit, with Retry-After when the window frees", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"]).replace("api_base", "rpm: 1\n      api_base")}`,
    );
    await route(h, "g");
    h.clock.now += 20_000;
    const e = (await route(h, "g").catch((x) => x)) as GatewayError;
    expect(e).toMatchObject({ kind: "rate_limit", retryAfterSeconds: 40 });
  });

  it("keeps max_parallel_requests", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"]).replace("api_base", "max_parallel_requests: 1\n      api_base")}`,
    );
    let release!: () => void;
    h.behave.set("a", (d) => new Promise((resolve) => (release = () => resolve(ok(d)))));
    const first = route(h, "g");
    await new Promise((r) => setTimeout(r, 0));
    await expect(route(h, "g")).rejects.toMatchObject({ kind: "rate_limit" });
    release();
    await first;
  });

  it("uses a lower priority tier only when the higher one has no healthy deployment", async () => {
    const yaml = `model_list:\n${deploymentsYaml("g", ["a"]).replace("api_base", "order: 1\n      api_base")}${deploymentsYaml("g", ["b"]).replace("api_base", "order: 2\n      api_base")}\nrouter_settings:\n  allowed_fails: 1\n`;
    const h = harness(yaml);
    for (let i = 0; i < 5; i++) await route(h, "g");
    expect(new Set(h.calls)).toEqual(new Set(["a"]));
    h.behave.set("a", fail(serverError));
    const out = await route(h, "g");
    expect(out.deployment.id).toBe("b");
  });
});

describe("fallbacks", () => {
  const yaml = `model_list:\n${deploymentsYaml("hq", ["a"])}${deploymentsYaml("second", ["b"])}${deploymentsYaml("third", ["c"])}  - model_name: gpt\n    params:\n      model: openai/gpt-image-1\n      api_key: k\n    model_info:\n      id: g1\nrouter_settings:\n  num_retries: 0\n  fallbacks: [{ hq: [gpt, second, third] }]\n  content_policy_fallbacks: [{ second: [third] }]\n`;

  it("tries the fallback groups in order after the group's retries, skipping those that cannot serve the request", async () => {
    const h = harness(yaml);
    h.behave.set("a", fail(serverError));
    h.behave.set("b", fail(serverError));
    const l = listener();
    const out = await route(h, "hq", request({ size: "256x256" }), l);
    expect(out.group).toBe("third");
    expect(h.calls).toEqual(["a", "b", "c"]);
    expect(l.fallbacks[0]).toMatch(/^gpt: skipped: .*'256x256'/); // gpt-image-1 has no 256x256
  });

  it("does not route a safety refusal around the provider unless content_policy_fallbacks say so", async () => {
    const h = harness(yaml);
    h.behave.set(
      "a",
      fail(() => new GatewayError("content_policy", "refused")),
    );
    await expect(route(h, "hq")).rejects.toMatchObject({ kind: "content_policy" });
    expect(h.calls).toEqual(["a"]);

    h.behave.set(
      "b",
      fail(() => new GatewayError("content_policy", "refused")),
    );
    const out = await route(h, "second");
    expect(out.group).toBe("third");
  });

  it("rejects a request no deployment of the group can serve before any upstream call", async () => {
    const h = harness(yaml);
    await expect(route(h, "hq", request({ n: 11 }))).rejects.toMatchObject({
      kind: "invalid_request",
      param: "n",
    });
    expect(h.calls).toEqual([]);
  });
});

describe("client cancel", () => {
  it("stops retrying when the client goes away", async () => {
    const h = harness(
      `model_list:\n${deploymentsYaml("g", ["a"])}\nrouter_settings:\n  allowed_fails: 10\n`,
    );
    const controller = new AbortController();
    h.behave.set("a", async () => {
      controller.abort(new Error("client went away"));
      throw serverError();
    });
    await expect(
      h.router.route(h.resolver.resolve("g"), request(), controller.signal, listener()),
    ).rejects.toThrow("client went away");
    expect(h.calls).toEqual(["a"]);
  });
});
