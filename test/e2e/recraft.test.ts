/**
 * Recraft end to end: the OpenAI SDK (REST) and grpc-js against the gateway and the Recraft
 * emulator. URLs on Recraft's host and base64, the size tables of each model generation,
 * SVG from vector models, n fanned out over calls of six, style and substyle, `credits` as
 * the cost, the refusal, throttling, auth failures and the 400s the gateway answers itself.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pngSize } from "@imagegate/emulators/png";
import { recraftFaults } from "@imagegate/emulators/recraft";
import { svgSize } from "@imagegate/emulators/svg";
import { type Clients, Code, createClients, failed, ok } from "../support/protocols.ts";
import { RECRAFT_KEY, type RecraftStack, startRecraftStack } from "../support/recraft-stack.ts";

const PROTOCOLS = ["rest", "grpc"] as const;
const WRONG_KEY = "rc-wrong-key-LEAKCHECK-42";

const YAML = `model_list:
  - model_name: recraft-bad-key
    params:
      model: recraft/recraftv3
      api_key: ${WRONG_KEY}
    model_info:
      id: recraft-bad-key
  - model_name: recraft-priced
    params:
      model: recraft/recraftv3
    model_info:
      id: recraft-priced
      output_cost_per_image: 0.5
router_settings:
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
`;

let ctx: RecraftStack;
let clients: Clients;
beforeAll(async () => {
  ctx = await startRecraftStack(() => YAML);
  clients = createClients(ctx.stack);
});
afterAll(async () => {
  clients?.close();
  await ctx?.close();
});
afterEach(() => {
  ctx.recraft.faults.clear();
});

const upstreamBodies = (since: number) =>
  ctx.recraft.requests.slice(since).map((r) => r.body as Record<string, unknown>);
const lastUpstream = () => ctx.recraft.requests.at(-1)!;

describe.each(PROTOCOLS)("Recraft over %s", (protocol) => {
  it("recraftv3: Recraft's own URL by default, a PNG of the size produced, cost from credits", async () => {
    const { response, headers } = ok(
      await clients.call(protocol, { model: "recraft/recraftv3", prompt: "a lighthouse" }),
    );
    const url = response.data[0]!.url!;
    expect(url.startsWith(`${new URL(ctx.recraft.baseUrl).origin}/img/`)).toBe(true);
    const download = await fetch(url);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
      width: 1024,
      height: 1024,
    });
    expect(response.size).toBe("1024x1024");
    expect(headers.get("x-imagegate-model")).toBe("recraft/recraftv3");
    expect(headers.get("x-imagegate-cost-usd")).toBe("0.04");
    expect(lastUpstream().headers.authorization).toBe(`Bearer ${RECRAFT_KEY}`);
    expect(lastUpstream().body).toEqual({
      prompt: "a lighthouse",
      model: "recraftv3",
      n: 1,
      size: "1024x1024",
    });
  });

  it.each([
    ["recraftv3", { size: "1792x1024" }, "1820x1024", "0.04"],
    ["recraftv3", { size: "1024x1536" }, "1024x1536", "0.04"],
    ["recraftv3", { aspect_ratio: "16:9" }, "1820x1024", "0.04"],
    ["recraftv2", { size: "1434x1024" }, "1434x1024", "0.022"],
    ["recraftv4", { size: "1792x1024" }, "1344x768", "0.04"],
    ["recraftv4_1", { size: "1024x1536" }, "832x1280", "0.035"],
    ["recraftv4_pro", {}, "2048x2048", "0.25"],
    ["recraftv4_pro", { aspect_ratio: "9:16" }, "1536x2688", "0.25"],
  ])("%s %j as b64_json: produces %s, echoed and priced", async (model, extra, produced, cost) => {
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: `recraft/${model}`,
        prompt: "a harbour",
        response_format: "b64_json",
        ...extra,
      }),
    );
    const [w, h] = produced.split("x").map(Number);
    expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: w, height: h });
    expect(response.size).toBe(produced);
    expect(headers.get("x-imagegate-cost-usd")).toBe(cost);
    expect(lastUpstream().body).toMatchObject({
      model,
      size: produced,
      response_format: "b64_json",
    });
    expect(lastUpstream().body).not.toHaveProperty("aspect_ratio");
  });

  it("vector models answer SVG: bytes as b64_json, and a URL that serves image/svg+xml", async () => {
    const b64 = ok(
      await clients.call(protocol, {
        model: "recraft/recraftv3_vector",
        prompt: "an icon",
        response_format: "b64_json",
        style: "vector_illustration",
        substyle: "line_art",
      }),
    );
    expect(svgSize(b64.response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
    expect(b64.headers.get("x-imagegate-cost-usd")).toBe("0.08");
    const byUrl = ok(
      await clients.call(protocol, {
        model: "recraft/recraftv4_vector",
        prompt: "an icon",
        size: "1536x1024",
      }),
    );
    const download = await fetch(byUrl.response.data[0]!.url!);
    expect(download.headers.get("content-type")).toBe("image/svg+xml");
    expect(svgSize(await download.text())).toEqual({ width: 1280, height: 832 });
  });

  it("fans n=8 out over calls of 6 and 2, returning 8 images and the summed credits", async () => {
    const since = ctx.recraft.requests.length;
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "recraft/recraftv3",
        prompt: "foxes",
        n: 8,
        response_format: "b64_json",
        size: "512x512",
      }),
    );
    expect(response.data).toHaveLength(8);
    for (const img of response.data)
      expect(pngSize(img.b64Json!)).toEqual({ width: 1024, height: 1024 });
    expect(
      upstreamBodies(since)
        .map((b) => b.n)
        .sort(),
    ).toEqual([2, 6]);
    expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.32, 10);
  });

  it("passes style, substyle, negative_prompt and seed on in Recraft's names", async () => {
    ok(
      await clients.call(protocol, {
        model: "recraft/recraftv3",
        prompt: "a portrait",
        style: "realistic_image",
        substyle: "hdr",
        negative_prompt: "text",
        seed: 42,
        response_format: "b64_json",
      }),
    );
    expect(lastUpstream().body).toEqual({
      prompt: "a portrait",
      model: "recraftv3",
      n: 1,
      size: "1024x1024",
      style: "realistic_image",
      substyle: "hdr",
      negative_prompt: "text",
      random_seed: 42,
      response_format: "b64_json",
    });
  });

  it("bills the operator's per-image price over Recraft's credits", async () => {
    const { headers } = ok(
      await clients.call(protocol, {
        model: "recraft-priced",
        prompt: "a fox",
        response_format: "b64_json",
      }),
    );
    expect(headers.get("x-imagegate-cost-usd")).toBe("0.5");
  });

  it("turns Recraft's refusal into content_policy_violation, costing nothing", async () => {
    const err = failed(
      await clients.call(protocol, { model: "recraft/recraftv3", prompt: "something forbidden" }),
    );
    expect(err.code).toBe("content_policy_violation");
    expect(err.message).toMatch(/^Recraft: The prompt was rejected by content moderation/);
    expect(err.headers.get("x-imagegate-cost-usd")).toBe("0");
    if (protocol === "rest") expect(err.httpStatus).toBe(400);
    else expect(err.grpcCode).toBe(Code.InvalidArgument);
  });

  it("answers Recraft's 429 (no Retry-After) as a rate limit", async () => {
    ctx.recraft.faults.push(recraftFaults.rateLimit());
    const err = failed(
      await clients.call(protocol, { model: "recraft/recraftv4", prompt: "a fox" }),
    );
    expect(err.code).toBe("rate_limit_exceeded");
    if (protocol === "rest") {
      expect(err.httpStatus).toBe(429);
      expect(err.type).toBe("rate_limit_error");
    } else {
      expect(err.grpcCode).toBe(Code.ResourceExhausted);
    }
  });

  it("answers 502 upstream_auth_failed for Recraft's plain-text 401, without the key", async () => {
    const err = failed(await clients.call(protocol, { model: "recraft-bad-key", prompt: "a fox" }));
    expect(err.code).toBe("upstream_auth_failed");
    expect(JSON.stringify(err)).not.toContain("LEAKCHECK");
    if (protocol === "rest") expect(err.httpStatus).toBe(502);
    else expect(err.grpcCode).toBe(Code.Unavailable);
  });

  it.each([
    ["recraftv4", { style: "realistic_image" }, "style"],
    ["recraftv3", { style: "vivid" }, "style"],
    ["recraftv3", { style: "digital_illustration", substyle: "hdr" }, "substyle"],
    ["recraftv3", { substyle: "hdr" }, "substyle"],
    ["recraftv4", { negative_prompt: "text" }, "negative_prompt"],
    ["recraftv4_1", { seed: 1 }, "seed"],
    ["recraftv3", { quality: "hd" }, "quality"],
    ["recraftv3", { n: 11 }, "n"],
    ["recraftv4", { size: "1365x1024" }, "size"],
    ["recraftv3", { aspect_ratio: "21:9" }, "aspect_ratio"],
    ["recraftv3", { aspect_ratio: "16:9", size: "1024x1024" }, "aspect_ratio"],
    ["recraftv3", { background: "transparent" }, "background"],
    ["recraftv3", { prompt: "x".repeat(1001) }, "prompt"],
  ])(
    "rejects what %s cannot take (%j) before calling Recraft, naming %s",
    async (model, extra, param) => {
      const before = ctx.recraft.requests.length;
      const err = failed(
        await clients.call(protocol, { model: `recraft/${model}`, prompt: "a fox", ...extra }),
      );
      expect(err.param).toBe(param);
      if (protocol === "rest") expect(err.httpStatus).toBe(400);
      else expect(err.grpcCode).toBe(Code.InvalidArgument);
      expect(ctx.recraft.requests.length).toBe(before);
    },
  );
});
