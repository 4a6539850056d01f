/**
 * The Azure OpenAI emulator on its own, over plain HTTP: api-key and Entra ID bearer auth
 * (its token endpoint included), api-version and deployment checks, body validation as
 * Azure does it, the content filter's refusal shapes, image URLs, and faults.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AzureEmulator, azureFaults, startAzureEmulator } from "@imagegate/emulators/azure";
import { pngSize } from "@imagegate/emulators/png";

// biome-ignore lint/suspicious/noExplicitAny: assertions read parsed JSON bodies of any shape
type Json = any;

const KEY = "azure-test-key-0123456789abcdef";
const APP = {
  tenantId: "tenant-a",
  clientId: "client-a",
  clientSecret: "secret-a",
  tokenTtlSeconds: 600,
};

let emu: AzureEmulator;
let clock = 1_800_000_000_000;

beforeAll(async () => {
  emu = await startAzureEmulator({
    apiKey: KEY,
    entra: APP,
    deployments: { "my-dalle": "dall-e-3", "img-prod": "gpt-image-1" },
    now: () => clock,
  });
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.faults.clear();
  clock = 1_800_000_000_000;
});

/** `apiVersion` null: no api-version at all. */
function url(deployment: string, apiVersion: string | null = "2025-04-01-preview"): string {
  const query = apiVersion === null ? "" : `?api-version=${apiVersion}`;
  return `${emu.endpoint}/openai/deployments/${deployment}/images/generations${query}`;
}

async function post(
  deployment: string,
  body: unknown,
  opts: { headers?: Record<string, string>; apiVersion?: string | null } = {},
): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(url(deployment, opts.apiVersion), {
    method: "POST",
    headers: { "api-key": KEY, "content-type": "application/json", ...opts.headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json, headers: res.headers };
}

async function token(form: Record<string, string>, tenant = APP.tenantId) {
  const res = await fetch(`${emu.authorityHost}/${tenant}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

const GRANT = {
  grant_type: "client_credentials",
  client_id: APP.clientId,
  client_secret: APP.clientSecret,
  scope: "https://cognitiveservices.azure.com/.default",
};

describe("auth", () => {
  it("rejects a wrong or missing api-key with Azure's 401", async () => {
    for (const headers of [{ "api-key": "nope" }, { "api-key": "" }]) {
      const r = await post("my-dalle", { prompt: "x" }, { headers });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("401");
      expect(r.json.error.message).toMatch(
        /^Access denied due to invalid subscription key or wrong API endpoint/,
      );
    }
    const res = await fetch(url("my-dalle"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"prompt":"x"}',
    });
    expect(res.status).toBe(401);
  });

  it("grants client-credentials tokens and accepts them until they expire", async () => {
    const granted = await token(GRANT);
    expect(granted.status).toBe(200);
    expect(granted.json).toMatchObject({
      token_type: "Bearer",
      expires_in: 600,
      ext_expires_in: 600,
    });
    const headers = {
      authorization: `Bearer ${granted.json.access_token}`,
      "content-type": "application/json",
    };
    const ok = await fetch(url("my-dalle"), {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "x", response_format: "b64_json" }),
    });
    expect(ok.status).toBe(200);
    clock += 601 * 1000;
    const expired = await fetch(url("my-dalle"), {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "x" }),
    });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as Json).error.message).toMatch(
      /Access token is missing, invalid, audience is incorrect/,
    );
    const forged = await fetch(url("my-dalle"), {
      method: "POST",
      headers: { authorization: "Bearer forged", "content-type": "application/json" },
      body: "{}",
    });
    expect(forged.status).toBe(401);
  });

  it("answers the token endpoint's errors as Entra ID does", async () => {
    const before = emu.tokenRequests;
    const secret = await token({ ...GRANT, client_secret: "wrong" });
    expect(secret.status).toBe(401);
    expect(secret.json.error).toBe("invalid_client");
    expect(secret.json.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided/);
    expect(secret.json.error_codes).toEqual([7000215]);
    expect((await token({ ...GRANT, client_id: "other" })).json.error).toBe("unauthorized_client");
    expect((await token(GRANT, "other-tenant")).json.error_description).toMatch(
      /AADSTS90002: Tenant 'other-tenant' not found/,
    );
    expect(
      (await token({ ...GRANT, scope: "https://graph.microsoft.com/.default" })).json.error,
    ).toBe("invalid_scope");
    expect((await token({ ...GRANT, grant_type: "password" })).json.error).toBe(
      "unsupported_grant_type",
    );
    expect((await token({ ...GRANT, scope: "https://ai.azure.com/.default" })).status).toBe(200);
    expect(emu.tokenRequests - before).toBe(6);
  });
});

describe("routing and api-version", () => {
  it("answers 404 Resource not found without a known api-version", async () => {
    for (const apiVersion of [null, "2020-01-01", "banana"]) {
      const r = await post("my-dalle", { prompt: "x" }, { apiVersion });
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ error: { code: "404", message: "Resource not found" } });
    }
  });

  it("answers DeploymentNotFound for an unknown deployment", async () => {
    const r = await post("nope", { prompt: "x" });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("DeploymentNotFound");
  });

  it("serves GPT-image only from 2025-04-01-preview on; DALL·E 3 on GA versions", async () => {
    const old = await post("img-prod", { prompt: "x" }, { apiVersion: "2024-10-21" });
    expect(old.status).toBe(400);
    expect(old.json.error.code).toBe("OperationNotSupported");
    expect(
      (await post("img-prod", { prompt: "x" }, { apiVersion: "2025-06-01-preview" })).status,
    ).toBe(200);
    expect(
      (
        await post(
          "my-dalle",
          { prompt: "x", response_format: "b64_json" },
          { apiVersion: "2024-02-01" },
        )
      ).status,
    ).toBe(200);
  });
});

describe("validation", () => {
  it.each([
    ["my-dalle", { prompt: "x", n: 2 }, "n"],
    ["my-dalle", { prompt: "x", size: "1536x1024" }, "size"],
    ["my-dalle", { prompt: "x", quality: "high" }, "quality"],
    ["my-dalle", { prompt: "x", output_format: "png" }, "output_format"],
    ["img-prod", { prompt: "x", style: "vivid" }, "style"],
    ["img-prod", { prompt: "x", response_format: "url" }, "response_format"],
    [
      "img-prod",
      { prompt: "x", output_format: "webp", output_compression: 50 },
      "output_compression",
    ],
    ["img-prod", { prompt: "x", background: "transparent", output_format: "jpeg" }, "background"],
    ["img-prod", { prompt: "" }, "prompt"],
    ["img-prod", { prompt: "x", n: "2" }, "n"],
  ])("%s rejects %j naming %s", async (deployment, body, param) => {
    const r = await post(deployment, body);
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe(param);
  });

  it("rejects unknown arguments, and accepts jpeg compression", async () => {
    const r = await post("img-prod", { prompt: "x", safety_identifier: "u" });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toBe("Unrecognized request argument supplied: safety_identifier");
    expect(
      (await post("img-prod", { prompt: "x", output_format: "jpeg", output_compression: 50 }))
        .status,
    ).toBe(200);
  });
});

describe("refusals", () => {
  it("refuses DALL·E prompts with content_policy_violation and the filter results", async () => {
    const r = await post("my-dalle", { prompt: "something forbidden" });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({
      code: "content_policy_violation",
      type: "invalid_request_error",
      inner_error: {
        code: "ResponsibleAIPolicyViolation",
        content_filter_results: { violence: { filtered: true, severity: "high" } },
      },
    });
    expect(r.json.error.inner_error.revised_prompt).toContain("forbidden");
  });

  it("refuses GPT-image prompts with moderation_blocked", async () => {
    const r = await post("img-prod", { prompt: "Forbidden things" });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({
      code: "moderation_blocked",
      type: "image_generation_user_error",
    });
  });
});

describe("images", () => {
  it("returns DALL·E URLs on its own host with filter results, and serves the PNG", async () => {
    const r = await post("my-dalle", { prompt: "a lighthouse", size: "1024x1792" });
    expect(r.status).toBe(200);
    const [item] = r.json.data;
    expect(item.revised_prompt).toContain("a lighthouse");
    expect(item.content_filter_results.sexual).toEqual({ filtered: false, severity: "safe" });
    expect(item.prompt_filter_results.jailbreak).toEqual({ detected: false, filtered: false });
    expect(item.url.startsWith(`${emu.endpoint}/private/images/`)).toBe(true);
    const download = await fetch(item.url);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
      width: 1024,
      height: 1792,
    });
    clock += 25 * 60 * 60 * 1000;
    expect((await fetch(item.url)).status).toBe(403);
    expect((await fetch(`${emu.endpoint}/private/images/00/generated_00.png`)).status).toBe(404);
  });

  it("returns GPT-image base64 at the asked size with usage, and the response headers", async () => {
    const r = await post("img-prod", {
      prompt: "a lighthouse",
      size: "1536x1024",
      n: 2,
      quality: "low",
    });
    expect(r.status).toBe(200);
    expect(r.json.data).toHaveLength(2);
    expect(pngSize(Buffer.from(r.json.data[0].b64_json, "base64"))).toEqual({
      width: 1536,
      height: 1024,
    });
    expect(r.json.usage.output_tokens).toBeGreaterThan(0);
    expect(r.headers.get("apim-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers.get("x-ms-region")).toBe("East US");
  });
});

describe("faults", () => {
  it("plays Azure's 429 with Retry-After, and the same without the header", async () => {
    emu.faults.push(azureFaults.rateLimit(12));
    const r = await post("my-dalle", { prompt: "x" });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("12");
    expect(r.json.error.code).toBe("429");
    expect(r.json.error.message).toContain("Please retry after 12 seconds");
    emu.faults.push(azureFaults.rateLimit(7, false));
    const bare = await post("my-dalle", { prompt: "x" });
    expect(bare.status).toBe(429);
    expect(bare.headers.get("retry-after")).toBeNull();
  });

  it("aims faults at a deployment's model, and takes them over the control endpoint", async () => {
    emu.faults.push({ ...azureFaults.serverError(), model: "gpt-image-1" });
    expect((await post("my-dalle", { prompt: "x", response_format: "b64_json" })).status).toBe(200);
    expect((await post("img-prod", { prompt: "x" })).status).toBe(500);
    const queued = await fetch(`${emu.endpoint}/__emulator/faults`, {
      method: "POST",
      body: JSON.stringify(azureFaults.unavailable()),
    });
    expect(queued.status).toBe(201);
    expect((await post("img-prod", { prompt: "x" })).status).toBe(503);
    const bad = await fetch(`${emu.endpoint}/__emulator/faults`, {
      method: "POST",
      body: '{"status": 42}',
    });
    expect(bad.status).toBe(400);
  });
});
