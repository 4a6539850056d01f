/**
 * Azure OpenAI end to end: the OpenAI SDK (REST) and grpc-js against the gateway and the
 * Azure emulator. DALL·E 3 and GPT-image deployments under arbitrary names (base_model),
 * the direct names `npm run dev` serves, api-key and Entra ID auth, the URL Azure is
 * called on, refusals with the content filter's results, throttling with its retry hint,
 * auth failures, and the 400s the gateway answers itself.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AzureEmulator, azureFaults } from "@imagegate/emulators/azure";
import { pngSize } from "@imagegate/emulators/png";
import { AZURE_KEY, type AzureStack, ENTRA_APP, startAzureStack } from "../support/azure-stack.ts";
import { type Clients, Code, createClients, failed, ok } from "../support/protocols.ts";

// biome-ignore lint/suspicious/noExplicitAny: assertions read parsed JSON bodies of any shape
type Json = any;

const PROTOCOLS = ["rest", "grpc"] as const;
const WRONG_KEY = "wrong-azure-key-LEAKCHECK-1234";
const WRONG_SECRET = "wrong-entra-secret-LEAKCHECK-5678";

function yaml(azure: AzureEmulator): string {
  const base = `      api_base: ${azure.endpoint}\n`;
  const entra = (secret: string) =>
    `      tenant_id: ${ENTRA_APP.tenantId}\n      client_id: ${ENTRA_APP.clientId}\n      client_secret: ${secret}\n      azure_authority_host: ${azure.authorityHost}\n`;
  const entry = (
    group: string,
    model: string,
    baseModel: string | undefined,
    id: string,
    extra = "",
  ) =>
    `  - model_name: ${group}\n    params:\n      model: azure/${model}\n${base}${extra}    model_info:\n      id: ${id}\n${baseModel ? `      base_model: ${baseModel}\n` : ""}`;
  return `model_list:
${entry("dalle-prod", "my-dalle", "dall-e-3", "azure-dalle")}${entry("gpt-image-prod", "img-prod", "gpt-image-1", "azure-gpt-image")}${entry("dalle-entra", "my-dalle", "dall-e-3", "azure-dalle-entra", entra(ENTRA_APP.clientSecret))}${entry("gpt-image-entra", "img-prod", "gpt-image-1", "azure-gpt-image-entra", entra(ENTRA_APP.clientSecret))}${entry("bad-key", "my-dalle", "dall-e-3", "azure-bad-key", `      api_key: ${WRONG_KEY}\n`)}${entry("bad-secret", "my-dalle", "dall-e-3", "azure-bad-secret", entra(WRONG_SECRET))}${entry("pinned", "my-dalle", "dall-e-3", "azure-pinned", `      api_version: "2024-02-01"\n`)}${entry("ghost", "ghost", "dall-e-3", "azure-ghost")}${PROTOCOLS.flatMap(
  (p) => [
    entry(`limited-header-${p}`, "my-dalle", "dall-e-3", `azure-limited-header-${p}`),
    entry(`limited-text-${p}`, "my-dalle", "dall-e-3", `azure-limited-text-${p}`),
  ],
).join("")}router_settings:
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
`;
}

let ctx: AzureStack;
let clients: Clients;
beforeAll(async () => {
  ctx = await startAzureStack(yaml, {
    "my-dalle": "dall-e-3",
    "img-prod": "gpt-image-1",
    "dall-e-3": "dall-e-3",
    "gpt-image-1": "gpt-image-1",
    "gpt-image-1.5": "gpt-image-1.5",
  });
  clients = createClients(ctx.stack);
});
afterAll(async () => {
  clients?.close();
  await ctx?.close();
});
afterEach(() => {
  ctx.azure.faults.clear();
});

const lastUpstream = () => ctx.azure.requests.at(-1)!;

describe("Entra ID", () => {
  it("fetches one token for many concurrent requests and sends it as a bearer, not the key", async () => {
    const before = ctx.azure.tokenRequests;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        clients.call(
          "rest",
          i % 2 === 0
            ? { model: "dalle-entra", prompt: "a fox", response_format: "b64_json" }
            : { model: "gpt-image-entra", prompt: "a fox", quality: "low" },
        ),
      ),
    );
    for (const o of outcomes) expect(ok(o).response.data).toHaveLength(1);
    expect(ctx.azure.tokenRequests - before).toBe(1);
    const headers = lastUpstream().headers;
    expect(headers.authorization).toMatch(/^Bearer eyJ/);
    expect(headers["api-key"]).toBeUndefined();
    // Later requests reuse it.
    ok(
      await clients.call("grpc", {
        model: "dalle-entra",
        prompt: "a fox",
        response_format: "b64_json",
      }),
    );
    expect(ctx.azure.tokenRequests - before).toBe(1);
  });
});

describe.each(PROTOCOLS)("Azure OpenAI over %s", (protocol) => {
  it("DALL·E 3: a URL on Azure's host, the PNG at the asked size, revised_prompt, headers and cost", async () => {
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "dalle-prod",
        prompt: "a lighthouse",
        size: "1792x1024",
      }),
    );
    const image = response.data[0]!;
    expect(image.b64Json).toBeUndefined();
    expect(image.revisedPrompt).toBe("A detailed rendering of: a lighthouse");
    expect(image.url!.startsWith(`${ctx.azure.endpoint}/private/images/`)).toBe(true);
    const download = await fetch(image.url!);
    expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
      width: 1792,
      height: 1024,
    });
    expect(response.size).toBe("1792x1024");
    expect(headers.get("x-imagegate-model")).toBe("dalle-prod");
    expect(headers.get("x-imagegate-deployment")).toBe("azure-dalle");
    expect(headers.get("x-imagegate-cost-usd")).toBe("0.08");
    const upstream = lastUpstream();
    expect(upstream.path).toBe(
      "/openai/deployments/my-dalle/images/generations?api-version=2024-10-21",
    );
    expect(upstream.headers["api-key"]).toBe(AZURE_KEY);
    expect(upstream.headers.authorization).toBeUndefined();
    expect(upstream.body).toEqual({ prompt: "a lighthouse", size: "1792x1024" });
  });

  it("DALL·E 3: b64_json, hd", async () => {
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "dalle-prod",
        prompt: "a harbour",
        quality: "hd",
        style: "natural",
        response_format: "b64_json",
      }),
    );
    expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
    expect(headers.get("x-imagegate-cost-usd")).toBe("0.08");
    expect(lastUpstream().body).toEqual({
      prompt: "a harbour",
      quality: "hd",
      style: "natural",
      response_format: "b64_json",
    });
  });

  it("gpt-image-1: base64 at the asked size, usage, the GPT-image api-version, priced from usage", async () => {
    const { response, headers } = ok(
      await clients.call(protocol, {
        model: "gpt-image-prod",
        prompt: "an owl",
        size: "1024x1536",
        quality: "low",
        n: 2,
        output_format: "jpeg",
        output_compression: 70,
      }),
    );
    expect(response.data).toHaveLength(2);
    for (const img of response.data)
      expect(pngSize(img.b64Json!)).toEqual({ width: 1024, height: 1536 });
    const usage = response.usage!;
    expect(usage.outputTokens).toBeGreaterThan(0);
    const expected =
      (usage.inputTokensDetails!.textTokens * 5 +
        usage.inputTokensDetails!.imageTokens * 10 +
        usage.outputTokens * 40) /
      1e6;
    expect(Number(headers.get("x-imagegate-cost-usd"))).toBeCloseTo(expected, 9);
    const upstream = lastUpstream();
    expect(upstream.path).toBe(
      "/openai/deployments/img-prod/images/generations?api-version=2025-04-01-preview",
    );
    expect(upstream.body).toEqual({
      prompt: "an owl",
      size: "1024x1536",
      quality: "low",
      n: 2,
      output_format: "jpeg",
      output_compression: 70,
    });
  });

  it("gpt-image-1 with response_format url: the gateway serves the bytes, Azure is not asked for a format", async () => {
    const { response } = ok(
      await clients.call(protocol, {
        model: "gpt-image-prod",
        prompt: "an owl",
        response_format: "url",
        quality: "low",
      }),
    );
    const url = response.data[0]!.url!;
    expect(url.startsWith(ctx.stack.url)).toBe(true);
    expect(pngSize(Buffer.from(await (await fetch(url)).arrayBuffer()))).toEqual({
      width: 1024,
      height: 1024,
    });
    expect(lastUpstream().body).toEqual({ prompt: "an owl", quality: "low" });
  });

  it.each(["azure/dall-e-3", "azure/gpt-image-1", "azure/gpt-image-1.5"])(
    "serves the direct name %s from the environment",
    async (model) => {
      const { response, headers } = ok(
        await clients.call(protocol, {
          model,
          prompt: "a fox",
          ...(model.endsWith("dall-e-3") ? { response_format: "b64_json" } : {}),
        }),
      );
      expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
      expect(headers.get("x-imagegate-model")).toBe(model);
      expect(lastUpstream().path).toMatch(
        new RegExp(`^/openai/deployments/${model.slice(6)}/images/generations\\?api-version=`),
      );
    },
  );

  it("honours a deployment's api_version", async () => {
    ok(
      await clients.call(protocol, {
        model: "pinned",
        prompt: "a fox",
        response_format: "b64_json",
      }),
    );
    expect(lastUpstream().path).toBe(
      "/openai/deployments/my-dalle/images/generations?api-version=2024-02-01",
    );
  });

  it("turns Azure's content filter refusal into content_policy_violation with the filter results", async () => {
    const err = failed(
      await clients.call(protocol, { model: "dalle-prod", prompt: "something forbidden" }),
    );
    expect(err.code).toBe("content_policy_violation");
    expect(err.message).toMatch(
      /^Azure OpenAI: Your request was rejected as a result of our safety system/,
    );
    expect(err.headers.get("x-imagegate-cost-usd")).toBe("0");
    if (protocol === "rest") {
      expect(err.httpStatus).toBe(400);
      expect(err.type).toBe("invalid_request_error");
      const details = err.body!.details as Json;
      expect(details.provider_inner_code).toBe("ResponsibleAIPolicyViolation");
      expect(details.content_filter_results.violence).toEqual({ filtered: true, severity: "high" });
    } else {
      expect(err.grpcCode).toBe(Code.InvalidArgument);
    }
  });

  it("treats a GPT-image deployment's moderation_blocked as the same refusal", async () => {
    const err = failed(
      await clients.call(protocol, { model: "gpt-image-prod", prompt: "forbidden owl" }),
    );
    expect(err.code).toBe("content_policy_violation");
    if (protocol === "rest") expect(err.httpStatus).toBe(400);
    else expect(err.grpcCode).toBe(Code.InvalidArgument);
  });

  it("answers 429 with Retry-After from Azure's header, or from the seconds its message names", async () => {
    ctx.azure.faults.push(azureFaults.rateLimit(12));
    const withHeader = failed(
      await clients.call(protocol, { model: `limited-header-${protocol}`, prompt: "a fox" }),
    );
    ctx.azure.faults.push(azureFaults.rateLimit(9, false));
    const fromText = failed(
      await clients.call(protocol, { model: `limited-text-${protocol}`, prompt: "a fox" }),
    );
    for (const [err, seconds] of [
      [withHeader, "12"],
      [fromText, "9"],
    ] as const) {
      expect(err.code).toBe("rate_limit_exceeded");
      expect(err.headers.get("retry-after")).toBe(seconds);
      if (protocol === "rest") expect(err.httpStatus).toBe(429);
      else expect(err.grpcCode).toBe(Code.ResourceExhausted);
    }
  });

  it.each([
    ["bad-key", WRONG_KEY],
    ["bad-secret", WRONG_SECRET],
  ])(
    "answers 502 upstream_auth_failed when Azure or Entra ID rejects the gateway's credentials (%s)",
    async (model, secret) => {
      const err = failed(await clients.call(protocol, { model, prompt: "a fox" }));
      expect(err.code).toBe("upstream_auth_failed");
      expect(JSON.stringify(err)).not.toContain(secret);
      expect(JSON.stringify(err)).not.toContain("LEAKCHECK");
      if (protocol === "rest") {
        expect(err.httpStatus).toBe(502);
        expect(err.type).toBe("server_error");
      } else {
        expect(err.grpcCode).toBe(Code.Unavailable);
      }
    },
  );

  it("names a deployment Azure does not have", async () => {
    const err = failed(await clients.call(protocol, { model: "ghost", prompt: "a fox" }));
    expect(err.code).toBe("upstream_not_found");
    expect(err.message).toContain("deployment 'ghost' does not exist");
  });

  it.each([
    ["gpt-image-prod", { style: "vivid" }, "style"],
    ["gpt-image-prod", { output_format: "webp", output_compression: 50 }, "output_compression"],
    ["gpt-image-prod", { safety_identifier: "user-1" }, "safety_identifier"],
    ["dalle-prod", { n: 2 }, "n"],
    ["dalle-prod", { quality: "high" }, "quality"],
    ["dalle-prod", { substyle: "hdr" }, "substyle"],
    ["dalle-prod", { seed: 3 }, "seed"],
  ])(
    "rejects what %s cannot take (%j) before calling Azure, naming %s",
    async (model, extra, param) => {
      const before = ctx.azure.requests.length;
      const err = failed(await clients.call(protocol, { model, prompt: "a fox", ...extra }));
      expect(err.param).toBe(param);
      if (protocol === "rest") expect(err.httpStatus).toBe(400);
      else expect(err.grpcCode).toBe(Code.InvalidArgument);
      expect(ctx.azure.requests.length).toBe(before);
    },
  );
});
