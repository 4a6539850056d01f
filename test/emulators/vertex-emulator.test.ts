/**
 * The Vertex AI emulator on its own: the token endpoint's checks of a service-account JWT
 * (signature, kid, iss, aud, scope, iat/exp, grant type), access-token checks on the model
 * endpoints (missing, unknown, expired, other project), Vertex-only body rules, refusals
 * and faults. Assertions are signed here with `jose` directly, so the emulator is checked
 * against a signer other than the adapter's code path.
 */
import { createPrivateKey } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pngSize } from "@imagegate/emulators/png";
import {
  generateServiceAccountKey,
  googleFaults,
  type ServiceAccountKeyFile,
  startVertexEmulator,
  type VertexEmulator,
} from "@imagegate/emulators/vertex";
import {
  type GoogleJson,
  imagePart,
  predictionBytes,
  type TokenJson,
} from "../support/google-json.ts";

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const PROJECT = "vertex-emulator-test";
let clock = Date.now();
let emulator: VertexEmulator;

beforeAll(async () => {
  emulator = await startVertexEmulator({ projectId: PROJECT, now: () => clock });
});
afterAll(async () => {
  await emulator?.close();
});
afterEach(() => {
  clock = Date.now();
  emulator.faults.clear();
  emulator.tokenFaults.clear();
});

interface Claims {
  iss?: string;
  aud?: string;
  scope?: string;
  iat?: number;
  exp?: number;
}

async function assertion(
  key: ServiceAccountKeyFile,
  claims: Claims = {},
  kid = key.private_key_id,
): Promise<string> {
  const iat = claims.iat ?? Math.floor(clock / 1000);
  return new SignJWT({ scope: claims.scope ?? SCOPE })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid })
    .setIssuer(claims.iss ?? key.client_email)
    .setAudience(claims.aud ?? key.token_uri)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp ?? iat + 3600)
    .sign(createPrivateKey(key.private_key));
}

async function exchange(
  jwt: string,
  grantType = GRANT,
  contentType = "application/x-www-form-urlencoded",
) {
  const res = await fetch(emulator.tokenUri, {
    method: "POST",
    headers: { "content-type": contentType },
    body: new URLSearchParams({ grant_type: grantType, assertion: jwt }).toString(),
  });
  return { status: res.status, json: (await res.json()) as TokenJson };
}

async function accessToken(key = emulator.serviceAccount): Promise<string> {
  const { json } = await exchange(await assertion(key));
  return json.access_token as string;
}

function modelUrl(model: string, method = "predict", project = PROJECT, location = "us-central1") {
  return `${emulator.baseUrl}/projects/${project}/locations/${location}/publishers/google/models/${model}:${method}`;
}

async function predict(
  model: string,
  body: unknown,
  token: string | undefined,
  url = modelUrl(model),
) {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as GoogleJson };
}

const imagen = (parameters: object, prompt = "a red kite") => ({
  instances: [{ prompt }],
  parameters,
});

describe("token endpoint (JWT-bearer grant)", () => {
  it("a well-formed assertion gets a Bearer token with expires_in", async () => {
    const { status, json } = await exchange(await assertion(emulator.serviceAccount));
    expect(status).toBe(200);
    expect(json).toEqual({
      access_token: expect.stringMatching(/^ya29\./),
      expires_in: 3599,
      token_type: "Bearer",
    });
  });

  it("a signature by another key (same account and kid) is refused", async () => {
    const sa = emulator.serviceAccount;
    const impostor = generateServiceAccountKey({
      tokenUri: sa.token_uri,
      projectId: PROJECT,
      clientEmail: sa.client_email,
      privateKeyId: sa.private_key_id,
    });
    expect(await exchange(await assertion(impostor))).toEqual({
      status: 400,
      json: { error: "invalid_grant", error_description: "Invalid JWT Signature." },
    });
  });

  it("a kid the account does not have is refused", async () => {
    const { json } = await exchange(
      await assertion(emulator.serviceAccount, {}, "0123456789abcdef"),
    );
    expect(json.error_description).toBe("Invalid JWT Signature.");
  });

  it("an account may hold several keys; each signs for it", async () => {
    const sa = emulator.serviceAccount;
    const second = generateServiceAccountKey({
      tokenUri: sa.token_uri,
      projectId: PROJECT,
      clientEmail: sa.client_email,
    });
    emulator.addServiceAccount(second);
    expect((await exchange(await assertion(second))).status).toBe(200);
    expect((await exchange(await assertion(sa))).status).toBe(200);
  });

  it("an unknown issuer is refused", async () => {
    const stranger = generateServiceAccountKey({
      tokenUri: emulator.tokenUri,
      clientEmail: "who@else.iam.gserviceaccount.com",
    });
    const { json } = await exchange(await assertion(stranger));
    expect(json).toEqual({
      error: "invalid_grant",
      error_description: "Invalid grant: account not found",
    });
  });

  it("the audience must be the key's token_uri", async () => {
    const { json } = await exchange(
      await assertion(emulator.serviceAccount, { aud: "https://oauth2.googleapis.com/token" }),
    );
    expect(json.error).toBe("invalid_grant");
    expect(json.error_description).toBe(
      `Invalid JWT: Failed audience check. The right audience is ${emulator.tokenUri}`,
    );
  });

  it.each([
    ["expired", { iat: -7200, exp: -3600 }],
    ["longer than an hour", { iat: 0, exp: 3601 }],
    ["issued in the future", { iat: 3600, exp: 4000 }],
  ])("an assertion %s is refused", async (_, offsets) => {
    const now = Math.floor(clock / 1000);
    const { status, json } = await exchange(
      await assertion(emulator.serviceAccount, { iat: now + offsets.iat, exp: now + offsets.exp }),
    );
    expect(status).toBe(400);
    expect(json.error).toBe("invalid_grant");
    expect(json.error_description).toMatch(/Token must be a short-lived token \(60 minutes\)/);
  });

  it("the cloud-platform scope is required", async () => {
    const { json } = await exchange(
      await assertion(emulator.serviceAccount, {
        scope: "https://www.googleapis.com/auth/devstorage.read_only",
      }),
    );
    expect(json.error).toBe("invalid_scope");
  });

  it("another grant type, a non-form body, or garbage are refused", async () => {
    const jwt = await assertion(emulator.serviceAccount);
    expect((await exchange(jwt, "client_credentials")).json.error).toBe("unsupported_grant_type");
    expect((await exchange(jwt, GRANT, "application/json")).json.error).toBe("invalid_request");
    expect((await exchange("not.a.jwt")).json.error).toBe("invalid_grant");
  });

  it("records each exchange and takes token faults", async () => {
    const before = emulator.tokenRequests.length;
    emulator.tokenFaults.push(googleFaults.internal());
    expect((await exchange(await assertion(emulator.serviceAccount))).status).toBe(500);
    await exchange(await assertion(emulator.serviceAccount));
    expect(emulator.tokenRequests.slice(before)).toEqual([
      { clientEmail: emulator.serviceAccount.client_email, granted: true },
    ]);
  });
});

describe("model endpoints require an issued, unexpired token for the project", () => {
  it("no token: 401 UNAUTHENTICATED, CREDENTIALS_MISSING", async () => {
    const a = await predict("imagegeneration@006", imagen({ sampleCount: 1 }), undefined);
    expect(a.status).toBe(401);
    expect(a.json.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" });
    expect(a.json.error?.details?.[0]).toMatchObject({ reason: "CREDENTIALS_MISSING" });
  });

  it("a token the endpoint never issued: 401", async () => {
    const a = await predict("imagegeneration@006", imagen({ sampleCount: 1 }), "ya29.made-up");
    expect(a.status).toBe(401);
    expect(a.json.error?.message).toMatch(/invalid authentication credentials/);
  });

  it("an expired token: 401 ACCESS_TOKEN_EXPIRED", async () => {
    const token = await accessToken();
    expect((await predict("imagegeneration@006", imagen({ sampleCount: 1 }), token)).status).toBe(
      200,
    );
    clock += 3600 * 1000;
    const a = await predict("imagegeneration@006", imagen({ sampleCount: 1 }), token);
    expect(a.status).toBe(401);
    expect(a.json.error?.details?.[0]).toMatchObject({ reason: "ACCESS_TOKEN_EXPIRED" });
  });

  it("another project: 403 PERMISSION_DENIED", async () => {
    const a = await predict(
      "imagegeneration@006",
      imagen({}),
      await accessToken(),
      modelUrl("imagegeneration@006", "predict", "someone-else"),
    );
    expect(a.status).toBe(403);
    expect(a.json.error?.status).toBe("PERMISSION_DENIED");
    expect(a.json.error?.message).toContain("aiplatform.endpoints.predict");
  });

  it("an unknown publisher model: 404", async () => {
    const a = await predict("imagen-9", imagen({}), await accessToken());
    expect(a.status).toBe(404);
    expect(a.json.error?.message).toMatch(
      /Publisher Model `projects\/.+\/models\/imagen-9` not found/,
    );
  });
});

describe("Vertex Imagen rules", () => {
  let token: string;
  beforeAll(async () => {
    token = await accessToken();
  });

  it("a seed is refused while the watermark is on (the default from @006), taken with addWatermark false", async () => {
    const on = await predict("imagegeneration@006", imagen({ sampleCount: 1, seed: 5 }), token);
    expect(on.status).toBe(400);
    expect(on.json.error?.message).toMatch(/addWatermark/);
    expect(
      (
        await predict(
          "imagegeneration@006",
          imagen({ sampleCount: 1, seed: 5, addWatermark: false }),
          token,
        )
      ).status,
    ).toBe(200);
    // @005 does not watermark by default.
    expect(
      (await predict("imagegeneration@005", imagen({ sampleCount: 1, seed: 5 }), token)).status,
    ).toBe(200);
  });

  it("negativePrompt up to imagen-3.0-generate-001, not from -002 on", async () => {
    expect(
      (
        await predict(
          "imagen-3.0-generate-001",
          imagen({ sampleCount: 1, negativePrompt: "fog" }),
          token,
        )
      ).status,
    ).toBe(200);
    const a = await predict(
      "imagen-3.0-generate-002",
      imagen({ sampleCount: 1, negativePrompt: "fog" }),
      token,
    );
    expect(a.status).toBe(400);
    expect(a.json.error?.details?.[0]?.fieldViolations?.[0]?.field).toBe(
      "parameters.negativePrompt",
    );
  });

  it("safetySetting takes block_none and old aliases, in any case; personGeneration takes allow_all", async () => {
    for (const safetySetting of ["BLOCK_NONE", "block_few", "Block_Medium_And_Above"]) {
      expect(
        (await predict("imagen-3.0-generate-002", imagen({ sampleCount: 1, safetySetting }), token))
          .status,
      ).toBe(200);
    }
    expect(
      (
        await predict(
          "imagen-3.0-generate-002",
          imagen({ sampleCount: 1, personGeneration: "allow_all" }),
          token,
        )
      ).status,
    ).toBe(200);
  });

  it("Imagen 1 (@002) makes squares only; Ultra makes one image per call", async () => {
    expect(
      (await predict("imagegeneration@002", imagen({ aspectRatio: "16:9" }), token)).status,
    ).toBe(400);
    expect(
      (await predict("imagen-4.0-ultra-generate-001", imagen({ sampleCount: 2 }), token)).status,
    ).toBe(400);
  });

  it("labels are accepted at the top level; storageUri returns gcsUri instead of bytes", async () => {
    const a = await predict(
      "imagen-3.0-generate-002",
      { ...imagen({ sampleCount: 2, storageUri: "gs://bucket/out/" }), labels: { team: "a" } },
      token,
    );
    expect(a.status).toBe(200);
    expect(a.json.predictions).toEqual([
      { gcsUri: "gs://bucket/out/sample_0.png", mimeType: "image/png" },
      { gcsUri: "gs://bucket/out/sample_1.png", mimeType: "image/png" },
    ]);
  });

  it("enhancePrompt returns the enhanced prompt on each prediction", async () => {
    const a = await predict(
      "imagen-4.0-generate-001",
      imagen({ sampleCount: 1, enhancePrompt: true, sampleImageSize: "2K", aspectRatio: "4:3" }),
      token,
    );
    expect(a.json.predictions?.[0]?.prompt).toContain("a red kite");
    expect(pngSize(predictionBytes(a.json, 0))).toEqual({ width: 2560, height: 1792 });
  });

  it("refusals: 400 sensitive prompt; 200 raiFilteredReason or `{}`; fewer images", async () => {
    const blocked = await predict("imagegeneration@006", imagen({}, "a forbidden kite"), token);
    expect(blocked.status).toBe(400);
    expect(blocked.json.error).toMatchObject({
      status: "INVALID_ARGUMENT",
      message: expect.stringContaining("sensitive words"),
    });
    const reason = await predict(
      "imagegeneration@006",
      imagen({ includeRaiReason: true }, "a forbidden-image kite"),
      token,
    );
    expect(reason.json.predictions).toEqual([
      { raiFilteredReason: expect.stringContaining("Support codes: 29310472") },
    ]);
    expect(
      await predict("imagegeneration@006", imagen({}, "a forbidden-image kite"), token),
    ).toEqual({ status: 200, json: {} });
    const partial = await predict(
      "imagegeneration@006",
      imagen({ sampleCount: 4 }, "a partly-forbidden kite"),
      token,
    );
    expect(partial.json.predictions).toHaveLength(2);
  });

  it("Gemini on Vertex accepts imageOutputOptions, which AI Studio rejects", async () => {
    const a = await predict(
      "gemini-2.5-flash-image",
      {
        contents: [{ role: "user", parts: [{ text: "a kite" }] }],
        generationConfig: {
          responseModalities: ["TEXT", "IMAGE"],
          imageConfig: { aspectRatio: "4:5", imageOutputOptions: { mimeType: "image/png" } },
        },
      },
      token,
      modelUrl("gemini-2.5-flash-image", "generateContent"),
    );
    expect(a.status).toBe(200);
    const image = imagePart(a.json);
    expect(pngSize(Buffer.from(image.data, "base64"))).toEqual({ width: 896, height: 1152 });
  });

  it("a queued 429 carries Vertex's quota message and RetryInfo", async () => {
    emulator.faults.push({ ...googleFaults.rateLimit(30, "vertex"), model: "imagegeneration@006" });
    const a = await predict("imagegeneration@006", imagen({}), token);
    expect(a.status).toBe(429);
    expect(a.json.error?.message).toMatch(/online_prediction_requests_per_base_model/);
    expect(a.json.error?.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "30s",
    });
  });
});
