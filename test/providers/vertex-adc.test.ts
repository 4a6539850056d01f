/**
 * Vertex AI without `vertex_credentials`: Application Default Credentials through
 * google-auth-library, here the GCE / GKE metadata server, reached at `GCE_METADATA_HOST` (a
 * loopback stand-in that hands out access tokens the Vertex emulator issued to its service
 * account, so the emulator accepts exactly them). The project comes from the credentials
 * when `vertex_project` is absent; tokens are refreshed before they expire; a failing source
 * is a 502 `upstream_auth_failed` naming the deployment, and a startup warning.
 */
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { create } from "@bufbuild/protobuf";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startVertexEmulator, type VertexEmulator } from "@imagegate/emulators/vertex";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { isGatewayError } from "../../src/errors/errors.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { adcAccount } from "../../src/providers/vertex_ai/adc.ts";
import { probeVertexCredentials, vertexAdapter } from "../../src/providers/vertex_ai/adapter.ts";
import { requestAccessToken } from "../../src/providers/vertex_ai/service-account.ts";
import type { AdapterDeployment } from "../../src/providers/types.ts";

const PROJECT = "adc-project-123";
const catalog = loadCatalog();
let vertex: VertexEmulator;
let metadata: Server;
let metadataHost: string;
/** What the metadata stand-in was asked, and the tokens it gave. */
const asked: string[] = [];
const issued: string[] = [];
let lifetimeSeconds = 3599;

beforeAll(async () => {
  vertex = await startVertexEmulator({ projectId: PROJECT, host: "127.0.0.1", port: 0 });
  metadata = createServer(async (req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    asked.push(path);
    if (req.headers["metadata-flavor"] !== "Google") return res.writeHead(403).end();
    const head = { "metadata-flavor": "Google" };
    if (path === "/computeMetadata/v1/instance/service-accounts/default/token") {
      // The instance's service account, as the metadata server would mint its token.
      const { token } = await requestAccessToken(vertex.serviceAccount);
      issued.push(token);
      res.writeHead(200, { ...head, "content-type": "application/json" });
      return res.end(
        JSON.stringify({ access_token: token, expires_in: lifetimeSeconds, token_type: "Bearer" }),
      );
    }
    if (path === "/computeMetadata/v1/project/project-id")
      return res.writeHead(200, { ...head, "content-type": "application/text" }).end(PROJECT);
    if (path === "/computeMetadata/v1/instance" || path === "/computeMetadata/v1/instance/")
      return res.writeHead(200, { ...head, "content-type": "application/text" }).end("");
    res.writeHead(404, head).end();
  });
  await new Promise<void>((r) => metadata.listen(0, "127.0.0.1", r));
  metadataHost = `127.0.0.1:${(metadata.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => metadata?.close(() => r()));
  await vertex?.close();
});
beforeEach(() => {
  // Nothing from the machine running the tests: no key file, no gcloud login, no project.
  for (const name of [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GCE_METADATA_IP",
  ])
    vi.stubEnv(name, undefined);
  vi.stubEnv("CLOUDSDK_CONFIG", mkdtempSync(join(tmpdir(), "imagegate-gcloud-")));
  vi.stubEnv("GCE_METADATA_HOST", metadataHost);
  vi.stubEnv("METADATA_SERVER_DETECTION", "ping-only");
});

function deployment(params = ""): AdapterDeployment {
  const yaml = `model_list:\n  - model_name: imagen\n    params:\n      model: vertex_ai/imagen-3.0-generate-002\n${params}    model_info:\n      id: vertex-adc\n`;
  const env = { VERTEXAI_API_BASE: vertex.baseUrl };
  return parseConfig(yaml, env, catalog, "test.yaml").groups.get("imagen")![0]!;
}

function generate(d: AdapterDeployment) {
  return vertexAdapter.generate({
    deployment: d,
    request: create(CreateImageRequestSchema, { prompt: "a red fox" }),
    signal: new AbortController().signal,
  });
}

describe("the metadata server (GCE_METADATA_HOST)", () => {
  it("gives the token Vertex accepts and the project, once for many requests", async () => {
    const d = deployment();
    expect(await probeVertexCredentials(d)).toBeUndefined();
    const before = vertex.requests.length;
    for (let i = 0; i < 3; i++) expect((await generate(d)).images.length).toBeGreaterThan(0);
    const sent = vertex.requests.slice(before);
    expect(sent).toHaveLength(3);
    for (const r of sent) {
      expect(r.path).toContain(`/projects/${PROJECT}/`);
      expect(r.headers.authorization).toBe(`Bearer ${issued[0]}`);
    }
    expect(issued).toHaveLength(1);
    expect(asked).toContain("/computeMetadata/v1/project/project-id");
  });

  it("a configured vertex_project wins over the credentials' own", async () => {
    const d = deployment("      vertex_project: other-project\n");
    await expect(generate(d)).rejects.toMatchObject({ code: "upstream_auth_failed" });
    expect(vertex.requests.at(-1)!.path).toContain("/projects/other-project/");
  });

  it("refreshes the token before it expires", async () => {
    lifetimeSeconds = 2;
    try {
      const account = adcAccount();
      const signal = new AbortController().signal;
      const first = await account.tokens.get(signal);
      const start = Date.now();
      // Past the refresh point (half of a 2-second life); the token still served meanwhile.
      while (Date.now() - start < 1600) await new Promise((r) => setTimeout(r, 50));
      let second = await account.tokens.get(signal);
      for (let i = 0; i < 100 && second === first; i++) {
        await new Promise((r) => setTimeout(r, 20));
        second = await account.tokens.get(signal);
      }
      expect(second).not.toBe(first);
      expect(issued).toContain(second);
    } finally {
      lifetimeSeconds = 3599;
    }
  });
});

describe("no source", () => {
  it("is a 502 upstream_auth_failed naming the deployment's sources, and a startup warning", async () => {
    vi.stubEnv("METADATA_SERVER_DETECTION", "none");
    const account = adcAccount();
    const e = await account.tokens.get(new AbortController().signal).catch((x: unknown) => x);
    expect(isGatewayError(e) && e.code).toBe("upstream_auth_failed");
    expect((e as Error).message).toContain("Application Default Credentials");
    expect((e as Error).message).toContain("GCE_METADATA_HOST");
  });
});
