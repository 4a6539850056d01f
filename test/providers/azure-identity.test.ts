/**
 * Azure OpenAI without a key, token or client secret: Entra ID through @azure/identity.
 * Managed identity as App Service and Container Apps serve it (`IDENTITY_ENDPOINT` +
 * `IDENTITY_HEADER`), against a loopback stand-in that hands out tokens the Azure emulator's
 * Entra endpoint issued, so the emulator accepts exactly them; and workload identity
 * (`AZURE_FEDERATED_TOKEN_FILE` + `AZURE_AUTHORITY_HOST`).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type AzureEmulator, startAzureEmulator } from "@imagegate/emulators/azure";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { azureAdapter } from "../../src/providers/azure/adapter.ts";
import { probeAzureCredentials } from "../../src/providers/azure/identity.ts";
import type { AdapterDeployment } from "../../src/providers/types.ts";
import { AZURE_KEY, ENTRA_APP } from "../support/azure-stack.ts";

const IDENTITY_HEADER = "identity-header-for-tests";
const catalog = loadCatalog();
let azure: AzureEmulator;
let identity: Server;
let identityUrl: string;
const asked: string[] = [];
const issued: string[] = [];

beforeAll(async () => {
  azure = await startAzureEmulator({
    apiKey: AZURE_KEY,
    entra: ENTRA_APP,
    host: "127.0.0.1",
    port: 0,
    deployments: { "dall-e-3": "dall-e-3" },
  });
  identity = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    asked.push(`${url.pathname} resource=${url.searchParams.get("resource")}`);
    if (req.headers["x-identity-header"] !== IDENTITY_HEADER) return res.writeHead(401).end();
    // The app's identity, as the platform would mint its token.
    const r = await fetch(`${azure.authorityHost}/${ENTRA_APP.tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: ENTRA_APP.clientId,
        client_secret: ENTRA_APP.clientSecret,
        scope: "https://cognitiveservices.azure.com/.default",
      }).toString(),
    });
    const { access_token, expires_in } = (await r.json()) as {
      access_token: string;
      expires_in: number;
    };
    issued.push(access_token);
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        access_token,
        expires_on: String(Math.floor(Date.now() / 1000) + expires_in),
        resource: url.searchParams.get("resource"),
        token_type: "Bearer",
        client_id: ENTRA_APP.clientId,
      }),
    );
  });
  await new Promise<void>((r) => identity.listen(0, "127.0.0.1", r));
  identityUrl = `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`;
});
afterAll(async () => {
  await new Promise<void>((r) => identity?.close(() => r()));
  await azure?.close();
});
beforeEach(() => {
  for (const name of Object.keys(process.env))
    if (name.startsWith("AZURE_") || name.startsWith("IDENTITY_") || name.startsWith("MSI_"))
      vi.stubEnv(name, undefined);
});

function deployment(): AdapterDeployment {
  const yaml = `model_list:\n  - model_name: dalle\n    params:\n      model: azure/dall-e-3\n      api_base: ${azure.endpoint}\n    model_info:\n      id: azure-identity\n`;
  return parseConfig(yaml, {}, catalog, "test.yaml").groups.get("dalle")![0]!;
}

function generate(d: AdapterDeployment) {
  return azureAdapter.generate({
    deployment: d,
    request: create(CreateImageRequestSchema, { prompt: "a red fox", responseFormat: "b64_json" }),
    signal: new AbortController().signal,
  });
}

describe("managed identity (IDENTITY_ENDPOINT + IDENTITY_HEADER)", () => {
  it("signs requests with the token the platform's endpoint gave, fetched once", async () => {
    vi.stubEnv("IDENTITY_ENDPOINT", identityUrl);
    vi.stubEnv("IDENTITY_HEADER", IDENTITY_HEADER);
    const d = deployment();
    expect(d.params.api_key).toBeUndefined();
    expect(await probeAzureCredentials(d)).toBeUndefined();
    for (let i = 0; i < 2; i++) expect((await generate(d)).images).toHaveLength(1);
    const { headers } = azure.requests.at(-1)!;
    expect(headers.authorization).toBe(`Bearer ${issued[0]}`);
    expect(headers["api-key"]).toBeUndefined();
    expect(issued).toHaveLength(1);
    expect(asked[0]).toBe("/msi/token resource=https://cognitiveservices.azure.com");
  });
});

describe("workload identity (AZURE_FEDERATED_TOKEN_FILE + AZURE_AUTHORITY_HOST)", () => {
  // @azure/identity accepts only https authority hosts ("The authorityHost address must use
  // the 'https' protocol", no override), so a plain loopback stand-in cannot serve it: what is
  // checked here is that such a failure is the contract's error, naming the deployment and
  // never the federated token.
  it("a source that fails is a 502 upstream_auth_failed naming the deployment, and a startup warning", async () => {
    const federated = "eyJhbGciOiJSUzI1NiJ9.federated-token-for-tests-LEAKCHECK.signature";
    const file = join(mkdtempSync(join(tmpdir(), "imagegate-wi-")), "token");
    writeFileSync(file, federated);
    vi.stubEnv("AZURE_FEDERATED_TOKEN_FILE", file);
    vi.stubEnv("AZURE_CLIENT_ID", ENTRA_APP.clientId);
    vi.stubEnv("AZURE_TENANT_ID", ENTRA_APP.tenantId);
    vi.stubEnv("AZURE_AUTHORITY_HOST", azure.authorityHost);
    // No managed identity to fall back on: the instance metadata address is not reachable.
    vi.stubEnv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token");
    vi.stubEnv("IDENTITY_HEADER", IDENTITY_HEADER);
    // A fresh module: the identity chain is the process's, built on first use.
    vi.resetModules();
    const adapter = await import("../../src/providers/azure/adapter.ts");
    const ident = await import("../../src/providers/azure/identity.ts");
    const d = deployment();
    const e = await adapter.azureAdapter
      .generate({
        deployment: d,
        request: create(CreateImageRequestSchema, { prompt: "a red fox" }),
        signal: new AbortController().signal,
      })
      .then(
        () => undefined,
        (x: unknown) => x as { code?: string; message: string; httpStatus?: number },
      );
    expect(e?.code).toBe("upstream_auth_failed");
    expect(e?.message).toContain("deployment 'azure-identity'");
    expect(e?.message).toContain("workload identity");
    expect(e?.message).not.toContain(federated);
    const warning = await ident.probeAzureCredentials(d);
    expect(warning).toContain("deployment azure-identity");
    expect(warning).not.toContain(federated);
  });
});
