/**
 * The Vertex AI adapter: URLs, the service-account key, the signed assertion, the access
 * token cache (one refresh in flight, refresh before expiry), and the adapter against the
 * emulator (token caching under concurrency, expiry, revocation, refused keys, bodies).
 */
import { createPublicKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { buildDeployment, type Deployment } from "../../src/config/deployment.ts";
import { pngSize } from "@imagegate/emulators/png";
import {
  generateServiceAccountKey,
  googleFaults,
  type ServiceAccountKeyFile,
  startVertexEmulator,
  type VertexEmulator,
} from "@imagegate/emulators/vertex";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import {
  CLOUD_PLATFORM_SCOPE,
  loadServiceAccount,
  signAssertion,
} from "../../src/providers/vertex_ai/service-account.ts";
import {
  vertexAdapter,
  vertexDefaultBase,
  vertexUrl,
} from "../../src/providers/vertex_ai/adapter.ts";

const catalog = loadCatalog();
const PROJECT = "vertex-adapter-test";
let emulator: VertexEmulator;
let dir: string;

beforeAll(async () => {
  emulator = await startVertexEmulator({ projectId: PROJECT });
  dir = await mkdtemp(join(tmpdir(), "imagegate-vertex-test-"));
});
afterAll(async () => {
  await emulator?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  emulator.faults.clear();
  emulator.tokenFaults.clear();
  emulator.requests.length = 0;
  emulator.tokenRequests.length = 0;
  emulator.tokenLifetimeSeconds = 3599;
});

/** Each test gets its own key (so its own token cache), passed inline unless a path is given. */
function deployment(
  model: string,
  params: Record<string, string> = {},
  key?: ServiceAccountKeyFile,
): Deployment {
  return buildDeployment(
    {
      group: `vertex_ai/${model}`,
      params: {
        model: `vertex_ai/${model}`,
        vertex_credentials: JSON.stringify(key ?? emulator.createServiceAccount()),
        vertex_project: PROJECT,
        vertex_location: "us-east5",
        api_base: emulator.baseUrl,
        ...params,
      },
      where: "test",
      defaultTimeoutSeconds: 10,
    },
    catalog,
    {},
  );
}

function generate(d: Deployment, fields: Partial<CreateImageRequest> = {}) {
  return vertexAdapter.generate({
    deployment: d,
    request: create(CreateImageRequestSchema, { prompt: "a red kite over hills", ...fields }),
    signal: new AbortController().signal,
  });
}

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

const bearers = () =>
  emulator.requests.filter((r) => r.path !== "/token").map((r) => r.headers.authorization);

describe("URLs", () => {
  it("default base is regional; the global location has no prefix", () => {
    expect(vertexDefaultBase("us-central1")).toBe(
      "https://us-central1-aiplatform.googleapis.com/v1",
    );
    expect(vertexDefaultBase("global")).toBe("https://aiplatform.googleapis.com/v1");
  });

  it("publisher-model path, with @ kept in the model id", () => {
    expect(
      vertexUrl(
        "https://us-central1-aiplatform.googleapis.com/v1/",
        "p-1",
        "us-central1",
        "imagegeneration@006",
        "predict",
      ),
    ).toBe(
      "https://us-central1-aiplatform.googleapis.com/v1/projects/p-1/locations/us-central1/publishers/google/models/imagegeneration@006:predict",
    );
  });
});

describe("service-account key", () => {
  it("reads a file path or the JSON itself; token_uri is used as given", async () => {
    const key = generateServiceAccountKey({ tokenUri: "http://127.0.0.1:1/token" });
    const file = join(dir, "key.json");
    await writeFile(file, JSON.stringify(key));
    for (const source of [file, JSON.stringify(key)]) {
      const loaded = await loadServiceAccount(source);
      expect(loaded).toMatchObject({
        client_email: key.client_email,
        private_key_id: key.private_key_id,
        token_uri: "http://127.0.0.1:1/token",
      });
    }
  });

  it("defaults token_uri to Google's", async () => {
    const { token_uri: _, ...key } = generateServiceAccountKey({ tokenUri: "x" });
    expect((await loadServiceAccount(JSON.stringify(key))).token_uri).toBe(
      "https://oauth2.googleapis.com/token",
    );
  });

  it("errors name the path or the missing field, never the key's content", async () => {
    const key = generateServiceAccountKey({ tokenUri: "x" });
    const broken = `${JSON.stringify(key).slice(0, -10)}`;
    const e1 = await failure(loadServiceAccount(broken));
    expect(e1.code).toBe("upstream_auth_failed");
    expect(e1.message).not.toContain("PRIVATE KEY");
    expect(e1.message).not.toContain(key.private_key_id);
    const e2 = await failure(loadServiceAccount(join(dir, "missing.json")));
    expect(e2.message).toContain("missing.json");
    const { client_email: _, ...noEmail } = key;
    expect((await failure(loadServiceAccount(JSON.stringify(noEmail)))).message).toContain(
      "client_email",
    );
    const e4 = await failure(
      loadServiceAccount(JSON.stringify({ ...key, type: "authorized_user" })),
    );
    expect(e4.message).toContain("service_account");
  });
});

describe("signed assertion", () => {
  it("is an RS256 JWT: kid = private_key_id; iss, scope, aud = token_uri, iat, exp = iat + 3600", async () => {
    const key = generateServiceAccountKey({ tokenUri: "https://oauth2.example.test/token" });
    const jwt = await signAssertion(key, 1_800_000_000);
    expect(decodeProtectedHeader(jwt)).toEqual({
      alg: "RS256",
      typ: "JWT",
      kid: key.private_key_id,
    });
    const { payload } = await jwtVerify(jwt, createPublicKey(key.private_key), {
      algorithms: ["RS256"],
      currentDate: new Date(1_800_000_100 * 1000),
    });
    expect(payload).toEqual({
      iss: key.client_email,
      scope: CLOUD_PLATFORM_SCOPE,
      aud: "https://oauth2.example.test/token",
      iat: 1_800_000_000,
      exp: 1_800_003_600,
    });
  });
});

describe("Vertex AI adapter against the emulator", () => {
  it("Imagen: bearer token, project/location path, seed with addWatermark false", async () => {
    const d = deployment("imagegeneration@006");
    const result = await generate(d, { size: "1792x1024", n: 2, seed: 7, negativePrompt: "fog" });
    expect(result.images).toHaveLength(2);
    expect(result.size).toBe("1408x768");
    expect(pngSize(result.images[0]!.bytes!)).toEqual({ width: 1408, height: 768 });
    const call = emulator.requests.find((r) => r.path !== "/token")!;
    expect(call.path).toBe(
      `/v1/projects/${PROJECT}/locations/us-east5/publishers/google/models/imagegeneration@006:predict`,
    );
    expect(call.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(call.body).toEqual({
      instances: [{ prompt: "a red kite over hills" }],
      parameters: {
        sampleCount: 2,
        aspectRatio: "16:9",
        includeRaiReason: true,
        seed: 7,
        addWatermark: false,
        negativePrompt: "fog",
      },
    });
  });

  it("Gemini through :generateContent", async () => {
    const result = await generate(deployment("gemini-3-pro-image-preview"), {
      size: "1024x1536",
      quality: "high",
    });
    expect(result.size).toBe("1696x2528");
    expect(pngSize(result.images[0]!.bytes!)).toEqual({ width: 1696, height: 2528 });
    expect(emulator.requests.at(-1)?.path).toMatch(/gemini-3-pro-image-preview:generateContent$/);
  });

  it("the project comes from the key file when vertex_project is not set", async () => {
    const key = emulator.createServiceAccount();
    const d = buildDeployment(
      {
        group: "g",
        params: {
          model: "vertex_ai/imagen-4.0-fast-generate-001",
          vertex_credentials: JSON.stringify(key),
          api_base: emulator.baseUrl,
        },
        where: "test",
        defaultTimeoutSeconds: 10,
      },
      catalog,
      {},
    );
    await generate(d);
    expect(emulator.requests.at(-1)?.path).toBe(
      `/v1/projects/${PROJECT}/locations/us-central1/publishers/google/models/imagen-4.0-fast-generate-001:predict`,
    );
  });

  it("20 concurrent requests make exactly one token request", async () => {
    const d = deployment("imagen-4.0-fast-generate-001");
    const results = await Promise.all(Array.from({ length: 20 }, () => generate(d)));
    expect(results.every((r) => r.images.length === 1)).toBe(true);
    expect(emulator.tokenRequests).toHaveLength(1);
    expect(new Set(bearers()).size).toBe(1);
    await generate(d);
    expect(emulator.tokenRequests).toHaveLength(1);
  });

  it("an expiring token is refreshed before the emulator would refuse it", async () => {
    emulator.tokenLifetimeSeconds = 1;
    const d = deployment("imagen-4.0-fast-generate-001");
    await generate(d);
    await sleep(1_000);
    await generate(d);
    expect(emulator.tokenRequests.map((t) => t.granted)).toEqual([true, true]);
    expect(new Set(bearers()).size).toBe(2);
  });

  it("a revoked token fails once (upstream_auth_failed), then a new one is fetched", async () => {
    const d = deployment("imagen-4.0-fast-generate-001");
    await generate(d);
    emulator.revokeTokens();
    const e = await failure(generate(d));
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.message).toContain("401");
    await generate(d);
    expect(emulator.tokenRequests).toHaveLength(2);
  });

  it("a key whose signature does not verify is refused at the token endpoint", async () => {
    const real = emulator.createServiceAccount();
    const impostor = generateServiceAccountKey({
      tokenUri: real.token_uri,
      projectId: PROJECT,
      clientEmail: real.client_email,
      privateKeyId: real.private_key_id,
    });
    const e = await failure(generate(deployment("imagen-4.0-fast-generate-001", {}, impostor)));
    expect(e.kind).toBe("upstream");
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.message).toContain("Invalid JWT Signature.");
    expect(e.message).not.toContain("PRIVATE KEY");
    expect(emulator.requests.filter((r) => r.path !== "/token")).toHaveLength(0);
  });

  it("an expired assertion is refused (the emulator's clock is two hours ahead)", async () => {
    const ahead = await startVertexEmulator({
      projectId: PROJECT,
      now: () => Date.now() + 2 * 3600 * 1000,
    });
    try {
      const d = deployment(
        "imagen-4.0-fast-generate-001",
        { api_base: ahead.baseUrl },
        ahead.serviceAccount,
      );
      const e = await failure(generate(d));
      expect(e.code).toBe("upstream_auth_failed");
      expect(e.message).toContain("Token must be a short-lived token");
    } finally {
      await ahead.close();
    }
  });

  it("a failing token endpoint is upstream_auth_failed", async () => {
    emulator.tokenFaults.push(googleFaults.internal());
    const e = await failure(generate(deployment("imagen-4.0-fast-generate-001")));
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.message).toContain("500");
  });

  it("a key file on disk works (GOOGLE_APPLICATION_CREDENTIALS form)", async () => {
    const file = join(dir, "disk-key.json");
    await writeFile(file, JSON.stringify(emulator.createServiceAccount()));
    const d = deployment("imagen-3.0-generate-002", { vertex_credentials: file });
    expect((await generate(d)).images).toHaveLength(1);
  });

  it("refusals: a blocked prompt (400), everything filtered (200), and a partial batch", async () => {
    const d = deployment("imagen-3.0-generate-001");
    const blocked = await failure(generate(d, { prompt: "a forbidden kite" }));
    expect(blocked.kind).toBe("content_policy");
    expect(blocked.message).toContain("sensitive words");
    const filtered = await failure(generate(d, { prompt: "a forbidden-image kite", n: 2 }));
    expect(filtered.kind).toBe("content_policy");
    expect(filtered.message).toContain("Support codes: 29310472");
    const partial = await generate(d, { prompt: "a partly-forbidden kite", n: 4 });
    expect(partial.images).toHaveLength(2);
    expect(partial.filtered).toBe(2);
  });

  it("a partial fan-out keeps survivors from every call", async () => {
    // n=6 → calls of 4 and 2; "partly-forbidden" keeps 2 of 4 and 1 of 2.
    const result = await generate(deployment("imagen-4.0-generate-001"), {
      prompt: "a partly-forbidden kite",
      n: 6,
    });
    expect(result.images).toHaveLength(3);
    expect(result.filtered).toBe(3);
  });

  it("Vertex's 429 carries RetryInfo's delay", async () => {
    emulator.faults.push(googleFaults.rateLimit(11, "vertex"));
    const e = await failure(generate(deployment("imagen-4.0-fast-generate-001")));
    expect(e.kind).toBe("rate_limit");
    expect(e.retryAfterSeconds).toBe(11);
  });
});
