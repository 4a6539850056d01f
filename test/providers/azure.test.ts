/**
 * The Azure OpenAI adapter's pure parts: URL and api-version, the body (OpenAI's, without
 * `model`), Azure's error shapes mapped to the contract's errors, which credential a
 * deployment uses, the Entra ID token cache (against the emulator's token endpoint), and
 * the config rule that an arbitrary deployment name needs `model_info.base_model`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { validateRequest } from "../../src/catalog/validate.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type AzureEmulator, startAzureEmulator } from "@imagegate/emulators/azure";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import {
  apiVersionFor,
  azureImagesUrl,
  toAzureRequest,
} from "../../src/providers/azure/request.ts";
import {
  EntraTokenCache,
  entraCredentials,
  entraTokenUrl,
} from "../../src/providers/azure/entra.ts";
import { fromAzureError } from "../../src/providers/azure/errors.ts";
import { loadPrices } from "../../src/pricing/pricing.ts";
import type { UpstreamResponse } from "../../src/providers/http.ts";
import { isRetryable } from "../../src/router/policy.ts";
import { ModelResolver } from "../../src/router/resolve.ts";

const catalog = loadCatalog();

function request(init: Partial<Omit<CreateImageRequest, "$typeName">> = {}): CreateImageRequest {
  return create(CreateImageRequestSchema, { prompt: "a red fox", ...init });
}

function response(
  status: number,
  body: unknown,
  headers: UpstreamResponse["headers"] = {},
): UpstreamResponse {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(text, "utf8"),
  };
}

const FILTER_RESULTS = {
  hate: { filtered: false, severity: "safe" },
  sexual: { filtered: true, severity: "high" },
  violence: { filtered: false, severity: "safe" },
  self_harm: { filtered: false, severity: "safe" },
};

describe("URL and api-version", () => {
  it("appends the documented path to the resource endpoint", () => {
    expect(azureImagesUrl("https://res.openai.azure.com/", "my dalle", "2024-10-21")).toBe(
      "https://res.openai.azure.com/openai/deployments/my%20dalle/images/generations?api-version=2024-10-21",
    );
  });

  it("defaults to a GA version for DALL·E and the first GPT-image version, and honours api_version", () => {
    expect(apiVersionFor("dalle", undefined)).toBe("2024-10-21");
    expect(apiVersionFor("gpt-image", undefined)).toBe("2025-04-01-preview");
    expect(apiVersionFor("gpt-image", "2025-06-01-preview")).toBe("2025-06-01-preview");
  });

  it("builds the Entra token URL from the authority host and tenant", () => {
    expect(entraTokenUrl("https://login.microsoftonline.com/", "contoso.onmicrosoft.com")).toBe(
      "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
    );
  });
});

describe("toAzureRequest", () => {
  it("sends OpenAI's body without `model` (the deployment names it)", () => {
    const body = toAzureRequest(
      request({
        size: "1792x1024",
        quality: "hd",
        style: "natural",
        responseFormat: "b64_json",
        user: "u",
      }),
      "dalle",
    );
    expect(body).toEqual({
      prompt: "a red fox",
      size: "1792x1024",
      quality: "hd",
      style: "natural",
      response_format: "b64_json",
      user: "u",
    });
  });

  it("keeps response_format away from GPT-image deployments", () => {
    const body = toAzureRequest(
      request({ responseFormat: "b64_json", outputFormat: "jpeg", outputCompression: 60 }),
      "gpt-image",
    );
    expect(body).toEqual({ prompt: "a red fox", output_format: "jpeg", output_compression: 60 });
  });
});

describe("fromAzureError", () => {
  it("turns the content filter's refusal into content_policy, keeping the filter results", () => {
    const e = fromAzureError(
      response(400, {
        error: {
          code: "content_policy_violation",
          inner_error: {
            code: "ResponsibleAIPolicyViolation",
            content_filter_results: FILTER_RESULTS,
            revised_prompt: "a fox, safely",
          },
          message: "Your request was rejected as a result of our safety system.",
          type: "invalid_request_error",
        },
      }),
      "dep",
    );
    expect(e.kind).toBe("content_policy");
    expect(e.message).toBe(
      "Azure OpenAI: Your request was rejected as a result of our safety system.",
    );
    expect(e.details).toEqual({
      provider_code: "content_policy_violation",
      provider_inner_code: "ResponsibleAIPolicyViolation",
      content_filter_results: FILTER_RESULTS,
      revised_prompt: "a fox, safely",
    });
    expect(isRetryable(e)).toBe(false);
  });

  it("reads the older `innererror` spelling too", () => {
    const e = fromAzureError(
      response(400, {
        error: {
          code: "content_policy_violation",
          message: "no",
          innererror: {
            code: "ResponsibleAIPolicyViolation",
            content_filter_results: FILTER_RESULTS,
          },
        },
      }),
      "dep",
    );
    expect(e.details?.content_filter_results).toEqual(FILTER_RESULTS);
  });

  it("treats GPT-image deployments' moderation_blocked as a refusal", () => {
    const e = fromAzureError(
      response(400, {
        error: {
          code: "moderation_blocked",
          message: "blocked",
          type: "image_generation_user_error",
          param: null,
        },
      }),
      "dep",
    );
    expect(e.kind).toBe("content_policy");
    expect(e.details).toEqual({ provider_code: "moderation_blocked" });
  });

  it("maps 429 to rate_limit with Retry-After, or the seconds Azure names in its message", () => {
    const body = {
      error: {
        code: "429",
        message:
          "Requests … have exceeded call rate limit. Please retry after 17 seconds. Please go here…",
      },
    };
    const withHeader = fromAzureError(response(429, body, { "retry-after": "20" }), "dep");
    expect(withHeader).toMatchObject({
      kind: "rate_limit",
      code: "rate_limit_exceeded",
      retryAfterSeconds: 20,
    });
    const fromText = fromAzureError(response(429, body), "dep");
    expect(fromText).toMatchObject({
      kind: "rate_limit",
      code: "rate_limit_exceeded",
      retryAfterSeconds: 17,
    });
    expect(
      fromAzureError(response(429, { error: { code: "429", message: "Too many requests" } }), "dep")
        .retryAfterSeconds,
    ).toBeUndefined();
  });

  it("maps 401 to upstream_auth_failed without repeating Azure's text", () => {
    const e = fromAzureError(
      response(401, {
        error: { code: "401", message: "Access denied due to invalid subscription key abc123" },
      }),
      "dep",
    );
    expect(e).toMatchObject({ kind: "upstream", code: "upstream_auth_failed" });
    expect(e.message).not.toContain("abc123");
  });

  it("names a missing deployment, and a 404 elsewhere, as the gateway's configuration", () => {
    const missing = fromAzureError(
      response(404, {
        error: {
          code: "DeploymentNotFound",
          message: "The API deployment for this resource does not exist.",
        },
      }),
      "my-dalle",
    );
    expect(missing).toMatchObject({ kind: "upstream", code: "upstream_not_found" });
    expect(missing.message).toContain("deployment 'my-dalle' does not exist");
    const other = fromAzureError(
      response(404, { error: { code: "404", message: "Resource not found" } }),
      "my-dalle",
    );
    expect(other).toMatchObject({ kind: "upstream", code: "upstream_not_found" });
    expect(other.message).toMatch(/api_version/);
  });

  it("reports an api-version that cannot serve the model as an upstream failure", () => {
    const e = fromAzureError(
      response(400, {
        error: {
          code: "OperationNotSupported",
          message: "The imagesGenerate operation does not work with the specified model",
        },
      }),
      "img",
    );
    expect(e).toMatchObject({ kind: "upstream", code: "upstream_operation_not_supported" });
  });

  it("keeps the param of other 400s, and 503 as 503", () => {
    const bad = fromAzureError(
      response(400, {
        error: {
          code: "invalid_value",
          message: "Invalid size",
          param: "size",
          type: "invalid_request_error",
        },
      }),
      "d",
    );
    expect(bad).toMatchObject({ kind: "invalid_request", param: "size", code: "invalid_value" });
    const down = fromAzureError(
      response(503, { error: { code: "ServiceUnavailable", message: "busy" } }),
      "d",
    );
    expect(down).toMatchObject({ kind: "upstream", httpStatus: 503 });
  });
});

describe("entraCredentials", () => {
  it("uses client credentials only when tenant, client id and secret are all set", () => {
    expect(entraCredentials({ tenant_id: "t", client_id: "c" })).toBeUndefined();
    expect(
      entraCredentials({
        tenant_id: "t",
        client_id: "c",
        client_secret: "s",
        api_key: "k",
      }),
    ).toEqual({
      tenantId: "t",
      clientId: "c",
      clientSecret: "s",
      authorityHost: "https://login.microsoftonline.com",
    });
    expect(
      entraCredentials({
        tenant_id: "t",
        client_id: "c",
        client_secret: "s",
        azure_authority_host: "http://127.0.0.1:1",
      })?.authorityHost,
    ).toBe("http://127.0.0.1:1");
  });
});

describe("EntraTokenCache (against the emulated token endpoint)", () => {
  const app = {
    tenantId: "tenant-1",
    clientId: "client-1",
    clientSecret: "secret-LEAKCHECK-1",
    tokenTtlSeconds: 3600,
  };
  let emu: AzureEmulator;
  let clock = 1_800_000_000_000;
  beforeAll(async () => {
    emu = await startAzureEmulator({ apiKey: "k", entra: app, now: () => clock });
  });
  afterAll(async () => {
    await emu.close();
  });
  const creds = () => ({
    tenantId: app.tenantId,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    authorityHost: emu.authorityHost,
  });
  const signal = () => new AbortController().signal;

  it("asks once for many concurrent callers, then serves from the cache until near expiry", async () => {
    const cache = new EntraTokenCache(() => clock);
    const before = emu.tokenRequests;
    const tokens = await Promise.all(
      Array.from({ length: 12 }, () => cache.token(creds(), 5000, signal())),
    );
    expect(new Set(tokens).size).toBe(1);
    expect(emu.tokenRequests - before).toBe(1);
    clock += 50 * 60 * 1000; // 50 of 60 minutes: still fresh
    expect(await cache.token(creds(), 5000, signal())).toBe(tokens[0]);
    expect(emu.tokenRequests - before).toBe(1);
    // Within the refresh margin: the old token still serves while one refresh runs.
    clock += 6 * 60 * 1000;
    const during = await Promise.all(
      Array.from({ length: 5 }, () => cache.token(creds(), 5000, signal())),
    );
    expect(during).toEqual(Array(5).fill(tokens[0]));
    await new Promise((r) => setTimeout(r, 50));
    expect(emu.tokenRequests - before).toBe(2);
    expect(await cache.token(creds(), 5000, signal())).not.toBe(tokens[0]);
    // Past expiry a caller waits for a new token rather than sending a dead one.
    clock += 2 * 60 * 60 * 1000;
    const fresh = await cache.token(creds(), 5000, signal());
    expect(emu.tokenRequests - before).toBe(3);
    expect(fresh).not.toBe(tokens[0]);
  });

  it("fetches again after invalidate (Azure rejected the token)", async () => {
    const cache = new EntraTokenCache(() => clock);
    const first = await cache.token(creds(), 5000, signal());
    cache.invalidate(creds());
    const before = emu.tokenRequests;
    expect(await cache.token(creds(), 5000, signal())).not.toBe(first);
    expect(emu.tokenRequests - before).toBe(1);
  });

  it("turns a rejected secret into upstream_auth_failed, without the secret, and caches no failure", async () => {
    const cache = new EntraTokenCache(() => clock);
    const wrong = { ...creds(), clientSecret: "wrong-LEAKCHECK-2" };
    const e = await cache.token(wrong, 5000, signal()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GatewayError);
    expect(e).toMatchObject({ kind: "upstream", code: "upstream_auth_failed" });
    expect((e as Error).message).toMatch(
      /Entra ID token request failed \(401 invalid_client\): AADSTS7000215/,
    );
    expect((e as Error).message).not.toContain("LEAKCHECK");
    const before = emu.tokenRequests;
    await cache.token(wrong, 5000, signal()).catch(() => {});
    expect(emu.tokenRequests - before).toBe(1);
  });

  it("stops waiting when the caller's signal aborts, before or during the token request", async () => {
    const cache = new EntraTokenCache(() => clock);
    const gone = new AbortController();
    const reason = new Error("client went away");
    gone.abort(reason);
    await expect(cache.token(creds(), 5000, gone.signal)).rejects.toBe(reason);
    // A token endpoint that never answers: the caller leaves; the request itself fails later, quietly.
    const silent = http.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const host = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const leaving = new AbortController();
    const waiting = cache.token({ ...creds(), authorityHost: host }, 5000, leaving.signal);
    setTimeout(() => leaving.abort(reason), 20);
    await expect(waiting).rejects.toBe(reason);
    await new Promise<void>((resolve) => {
      silent.close(() => resolve());
      silent.closeAllConnections();
    });
  });
});

describe("catalog", () => {
  const azure = catalog.entries().filter((e) => e.provider === "azure");

  it("mirrors OpenAI's rules for the models Azure deploys, with jpeg-only compression", () => {
    expect(azure.map((e) => e.model)).toEqual([
      "dall-e-3",
      "gpt-image-1",
      "gpt-image-1-mini",
      "gpt-image-1.5",
    ]);
    expect(catalog.lookup("azure", "gpt-image-1")!.output_compression!.formats).toEqual(["jpeg"]);
    for (const e of azure) {
      const openai = catalog.lookup("openai", e.model)!;
      expect({ ...e.size, n: e.n, quality: e.quality, prompt: e.prompt_max_chars }).toEqual({
        ...openai.size,
        n: openai.n,
        quality: openai.quality,
        prompt: openai.prompt_max_chars,
      });
      expect(() =>
        validateRequest(
          request({
            n: e.n.max,
            size: e.size.default,
            quality: e.quality?.default,
            style: e.style?.default,
            outputFormat: e.output_format?.default,
            user: "u",
          }),
          e,
          e.model,
        ),
      ).not.toThrow();
    }
  });

  it("prices every Azure model (OpenAI's list prices)", () => {
    const prices = loadPrices(catalog);
    for (const e of azure) {
      const openai = prices.lookup("openai", e.model)!;
      expect(prices.lookup("azure", e.model)).toEqual({
        ...openai,
        provider: "azure",
        source: expect.any(String),
        ...(openai.input_image_tokens
          ? { input_image_tokens: { ...openai.input_image_tokens, source: expect.any(String) } }
          : {}),
      });
    }
  });
});

describe("config: Azure deployment names", () => {
  const entry = (model: string, info = "") =>
    `model_list:\n  - model_name: img\n    params:\n      model: ${model}\n      api_base: https://res.openai.azure.com\n      api_key: k\n${info}`;

  it("loads an arbitrary deployment name without model_info.base_model, naming it in a warning", () => {
    const config = parseConfig(entry("azure/prod-images-eu"), {}, catalog, "cfg");
    const [d] = config.groups.get("img")!;
    expect(d).toMatchObject({ provider: "azure", model: "prod-images-eu", unknownModel: true });
    expect(config.warnings.join("\n")).toMatch(
      /model_list\[0\]\.params: Azure deployment 'prod-images-eu' .*does not name a known model.*set model_info\.base_model/,
    );
    expect(config.warnings.join("\n")).toContain("dall-e-3, gpt-image-1");
  });

  it("validates against base_model and keeps the deployment name as the upstream model", () => {
    const config = parseConfig(
      entry("azure/prod-images-eu", "    model_info:\n      base_model: gpt-image-1\n"),
      {},
      catalog,
      "cfg",
    );
    const [d] = config.groups.get("img")!;
    expect(d).toMatchObject({ provider: "azure", model: "prod-images-eu" });
    expect(d!.spec.model).toBe("gpt-image-1");
    expect(d!.spec.provider).toBe("azure");
  });

  it("takes a deployment named after a known model as that model, also as a direct name", () => {
    const config = parseConfig(entry("azure/dall-e-3"), {}, catalog, "cfg");
    expect(config.groups.get("img")![0]!.spec.model).toBe("dall-e-3");
    const resolver = new ModelResolver(
      parseConfig(
        "",
        { AZURE_API_KEY: "k", AZURE_API_BASE: "https://res.openai.azure.com" },
        catalog,
        "cfg",
      ),
      catalog,
    );
    for (const name of ["azure/dall-e-3", "azure/gpt-image-1"]) {
      expect(resolver.resolve(name).deployments[0]).toMatchObject({
        provider: "azure",
        model: name.slice(6),
      });
    }
  });
});
