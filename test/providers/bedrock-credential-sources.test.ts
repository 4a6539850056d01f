/**
 * Bedrock credentials from the AWS SDK's own providers (@aws-sdk/credential-providers), each
 * against a loopback stand-in of the endpoint it calls (support/aws-identity.ts): ECS
 * container credentials, STS AssumeRoleWithWebIdentity with a token file, a profile from the
 * shared files, `aws_role_name` through STS AssumeRole (signed with the base credentials).
 * The Bedrock emulator verifies SigV4 and accepts exactly the credentials the sources issue.
 * Refresh before expiry; failures as 502 `upstream_auth_failed` naming the deployment, never
 * a secret, and as a startup warning naming the sources tried.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type BedrockEmulator, startBedrockEmulator } from "@imagegate/emulators/bedrock";
import type { AwsCredential } from "@imagegate/emulators/sigv4";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { isGatewayError } from "../../src/errors/errors.ts";
import { factsOf } from "../../src/errors/upstream.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { bedrockAdapter } from "../../src/providers/bedrock/adapter.ts";
import { probeBedrockCredentials } from "../../src/providers/bedrock/credentials.ts";
import type { AdapterDeployment } from "../../src/providers/types.ts";
import { startStack } from "../support/stack.ts";
import {
  credentialPool,
  type IdentityStandIn,
  type Issued,
  startIdentityStandIn,
} from "../support/aws-identity.ts";

const catalog = loadCatalog();
const dir = mkdtempSync(join(tmpdir(), "imagegate-aws-"));
const closers: (() => Promise<void>)[] = [];

beforeEach(() => {
  // Nothing from the machine running the tests: no shared files, no instance metadata.
  for (const name of Object.keys(process.env))
    if (name.startsWith("AWS_")) vi.stubEnv(name, undefined);
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(dir, "none-credentials"));
  vi.stubEnv("AWS_CONFIG_FILE", join(dir, "none-config"));
  vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.useRealTimers();
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

async function emulator(region: string, credentials: AwsCredential[]): Promise<BedrockEmulator> {
  // The emulator reads the clock as the test sets it (the refresh test moves it).
  const e = await startBedrockEmulator({
    credentials,
    region,
    host: "127.0.0.1",
    port: 0,
    now: () => Date.now(),
  });
  closers.push(() => e.close());
  return e;
}

async function standIn(
  options: Parameters<typeof startIdentityStandIn>[0],
): Promise<IdentityStandIn> {
  const s = await startIdentityStandIn(options);
  closers.push(() => s.close());
  return s;
}

function deployment(bedrock: BedrockEmulator, region: string, params = ""): AdapterDeployment {
  const yaml = `model_list:\n  - model_name: titan\n    params:\n      model: bedrock/amazon.titan-image-generator-v1\n${params}    model_info:\n      id: titan-${region}\n`;
  const env = { AWS_REGION: region, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.endpoint };
  return parseConfig(yaml, env, catalog, "test.yaml").groups.get("titan")![0]!;
}

function generate(d: AdapterDeployment) {
  return bedrockAdapter.generate({
    deployment: d,
    request: create(CreateImageRequestSchema, { prompt: "a red fox" }),
    signal: new AbortController().signal,
  });
}

/** The key id and session token Bedrock's last request was signed with. */
function lastSignedWith(bedrock: BedrockEmulator): { keyId: string; token: unknown } {
  const { headers } = bedrock.requests.at(-1)!;
  const keyId = /Credential=([^/]+)\//.exec(String(headers.authorization))?.[1] ?? "";
  return { keyId, token: headers["x-amz-security-token"] };
}

async function failure(d: AdapterDeployment) {
  try {
    await generate(d);
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
  throw new Error("expected the call to fail");
}

function secretsOf(issued: readonly Issued[]): string[] {
  return issued.flatMap((c) => [c.secretAccessKey, c.sessionToken]);
}

describe("ECS container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)", () => {
  it("signs with what the container endpoint issued, and refreshes them before they expire", async () => {
    const region = "eu-west-1";
    const pool = credentialPool("ecs", 4);
    const ids = await standIn({ pool, ecsToken: "ecs-auth-token" });
    const bedrock = await emulator(region, pool);
    vi.stubEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI", `${ids.url}/ecs/credentials`);
    vi.stubEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token");
    const d = deployment(bedrock, region);
    expect(await probeBedrockCredentials(d)).toBeUndefined();

    expect((await generate(d)).images).toHaveLength(1);
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[0]!.accessKeyId,
      token: pool[0]!.sessionToken,
    });
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toEqual(["ecs"]); // cached while valid

    // Four minutes before expiry (inside the SDK's five-minute window) they are fetched anew
    // in the background while the current ones still serve.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 56 * 60 * 1000);
    let signedWith = "";
    for (let i = 0; i < 100 && signedWith !== pool[1]!.accessKeyId; i++) {
      expect((await generate(d)).images).toHaveLength(1);
      signedWith = lastSignedWith(bedrock).keyId;
      if (signedWith !== pool[1]!.accessKeyId) await new Promise((r) => setTimeout(r, 10));
    }
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[1]!.accessKeyId,
      token: pool[1]!.sessionToken,
    });
    expect(ids.calls).toEqual(["ecs", "ecs"]);

    // Past their expiry, the next request waits for new ones.
    vi.setSystemTime(Date.now() + 2 * 60 * 60 * 1000);
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toEqual(["ecs", "ecs", "ecs"]);
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[2]!.accessKeyId,
      token: pool[2]!.sessionToken,
    });
  });
});

describe("web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) through STS", () => {
  it("exchanges the token file's token at STS (AWS_ENDPOINT_URL_STS) and signs with the role's credentials", async () => {
    const region = "eu-central-1";
    const pool = credentialPool("wid", 2);
    const token = "eyJhbGciOiJSUzI1NiJ9.web-identity.for-tests";
    const ids = await standIn({ pool, webIdentityToken: token });
    const bedrock = await emulator(region, pool);
    const tokenFile = join(dir, "web-identity-token");
    writeFileSync(tokenFile, token);
    vi.stubEnv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/eks-imagegate");
    vi.stubEnv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile);
    vi.stubEnv("AWS_ENDPOINT_URL_STS", ids.url);
    const d = deployment(bedrock, region);
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toEqual([
      "AssumeRoleWithWebIdentity arn:aws:iam::123456789012:role/eks-imagegate",
    ]);
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[0]!.accessKeyId,
      token: pool[0]!.sessionToken,
    });
  });
});

describe("LiteLLM's aws_web_identity_token + aws_role_name, at aws_sts_endpoint", () => {
  it("exchanges the deployment's token at its STS endpoint (no environment needed) and signs with the role's credentials", async () => {
    const region = "ca-central-1";
    const pool = credentialPool("lwi", 2);
    const token = "eyJhbGciOiJSUzI1NiJ9.litellm-web-identity.for-tests";
    const ids = await standIn({ pool, webIdentityToken: token });
    const bedrock = await emulator(region, pool);
    // The environment's own static pair and STS endpoint must not be used instead.
    vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIAWRONGENVIRONMENT");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "wrong/secret/from/the/environment/000000");
    vi.stubEnv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/never-called");
    const d = deployment(
      bedrock,
      region,
      `      aws_role_name: arn:aws:iam::123456789012:role/litellm-style\n      aws_web_identity_token: ${token}\n      aws_sts_endpoint: ${ids.url}\n      aws_session_name: team-a\n`,
    );
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toEqual([
      "AssumeRoleWithWebIdentity arn:aws:iam::123456789012:role/litellm-style",
    ]);
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[0]!.accessKeyId,
      token: pool[0]!.sessionToken,
    });
  });

  it("a token STS refuses is a 502 upstream_auth_failed naming the deployment, never the token", async () => {
    const region = "ca-west-1";
    const pool = credentialPool("lwx", 1);
    const ids = await standIn({ pool, webIdentityToken: "the-token-sts-expects" });
    const bedrock = await emulator(region, pool);
    const wrong = "eyJhbGciOiJSUzI1NiJ9.a-token-sts-refuses.secret-part";
    const d = deployment(
      bedrock,
      region,
      `      aws_role_name: arn:aws:iam::123456789012:role/litellm-style\n      aws_web_identity_token: ${wrong}\n      aws_sts_endpoint: ${ids.url}\n`,
    );
    const error = await failure(d);
    expect(error.message).toContain(`deployment 'titan-${region}'`);
    expect(error.message).toContain("aws_web_identity_token for role");
    expect(JSON.stringify(error)).not.toContain("secret-part");
    expect(bedrock.requests).toHaveLength(0);
  });

  it("a token without aws_role_name stops the config, naming the missing param", () => {
    const yaml =
      "model_list:\n  - model_name: titan\n    params:\n      model: bedrock/amazon.titan-image-generator-v1\n      aws_region_name: us-east-1\n      aws_web_identity_token: some-token\n";
    expect(() => parseConfig(yaml, {}, catalog, "test")).toThrow(/missing aws_role_name/);
  });
});

describe("a profile from the shared files, and aws_role_name through STS AssumeRole", () => {
  const base: AwsCredential = {
    accessKeyId: "AKIAPROFILEBASE00001",
    secretAccessKey: "profile/base/secret/for/tests/0000000000",
  };

  function profileFiles(): void {
    const credentials = join(dir, "credentials");
    writeFileSync(
      credentials,
      `[default]\naws_access_key_id = AKIAWRONGDEFAULT0001\naws_secret_access_key = wrong\n\n[imagegate]\naws_access_key_id = ${base.accessKeyId}\naws_secret_access_key = ${base.secretAccessKey}\n`,
    );
    vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", credentials);
  }

  it("signs with the profile's own pair (aws_profile_name)", async () => {
    const region = "ap-south-1";
    const bedrock = await emulator(region, [base]);
    profileFiles();
    const d = deployment(bedrock, region, "      aws_profile_name: imagegate\n");
    expect((await generate(d)).images).toHaveLength(1);
    expect(lastSignedWith(bedrock)).toEqual({ keyId: base.accessKeyId, token: undefined });
  });

  it("assumes aws_role_name from the profile's pair (the STS call signed with it) and signs with the role's", async () => {
    const region = "ap-northeast-1";
    const pool = credentialPool("role", 2);
    const ids = await standIn({ pool, stsCallers: [base], stsRegion: region });
    // The role's credentials only: the base pair is not accepted by Bedrock here.
    const bedrock = await emulator(region, pool);
    profileFiles();
    vi.stubEnv("AWS_ENDPOINT_URL_STS", ids.url);
    const role = "arn:aws:iam::123456789012:role/bedrock-invoker";
    const d = deployment(
      bedrock,
      region,
      `      aws_profile_name: imagegate\n      aws_role_name: ${role}\n      aws_session_name: imagegate-test\n`,
    );
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toEqual([`AssumeRole ${role}`]);
    expect(lastSignedWith(bedrock)).toEqual({
      keyId: pool[0]!.accessKeyId,
      token: pool[0]!.sessionToken,
    });
    expect((await generate(d)).images).toHaveLength(1);
    expect(ids.calls).toHaveLength(1);
  });

  it("a role STS refuses: 502 upstream_auth_failed naming the deployment and the sources, a startup warning, the deployment cooled down", async () => {
    const region = "sa-east-1";
    const pool = credentialPool("deny", 1);
    const role = "arn:aws:iam::123456789012:role/denied";
    const ids = await standIn({ pool, stsCallers: [base], stsRegion: region, deniedRoles: [role] });
    const bedrock = await emulator(region, pool);
    profileFiles();
    vi.stubEnv("AWS_ENDPOINT_URL_STS", ids.url);
    const d = deployment(
      bedrock,
      region,
      `      aws_profile_name: imagegate\n      aws_role_name: ${role}\n`,
    );
    const e = await failure(d);
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.httpStatus ?? 502).toBe(502);
    expect(factsOf(e).retry).toBe("elsewhere");
    expect(e.message).toContain(`deployment '${d.id}'`);
    expect(e.message).toContain(`role ${role}`);
    expect(e.message).toContain("not authorized");
    const warning = await probeBedrockCredentials(d);
    expect(warning).toContain(`deployment ${d.id}`);
    expect(warning).toContain("profile 'imagegate'");
    for (const text of [e.message, warning!])
      for (const secret of [base.secretAccessKey, ...secretsOf(pool)])
        expect(text).not.toContain(secret);
    expect(bedrock.requests).toHaveLength(0);
  });
});

describe("no source at all", () => {
  it("is a 502 upstream_auth_failed naming the deployment and every source of the chain", async () => {
    const region = "ca-central-1";
    const bedrock = await emulator(region, []);
    const d = deployment(bedrock, region);
    const e = await failure(d);
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.message).toContain(`deployment '${d.id}'`);
    expect(e.message).toMatch(
      /environment.*shared files.*web identity.*ECS.*EC2 instance metadata/,
    );
    expect(await probeBedrockCredentials(d)).toContain("no AWS credentials");
  });
});

describe("startup", () => {
  it("warns about a deployment whose credential source fails, naming it and the sources tried", async () => {
    const region = "us-east-2";
    const bedrock = await emulator(region, []);
    const warnings: string[] = [];
    const stack = await startStack({
      yaml: `model_list:\n  - model_name: titan\n    params:\n      model: bedrock/amazon.titan-image-generator-v1\n      aws_region_name: ${region}\n      api_base: ${bedrock.endpoint}\n    model_info:\n      id: titan-no-credentials\n`,
      logger: { log: (level, msg) => level === "warn" && warnings.push(msg) },
    });
    closers.push(() => stack.close());
    for (let i = 0; i < 200 && !warnings.some((w) => w.includes("titan-no-credentials")); i++)
      await new Promise((r) => setTimeout(r, 10));
    const warning = warnings.find((w) => w.includes("titan-no-credentials"));
    expect(warning).toContain("no AWS credentials from the AWS default chain");
    expect(warning).toContain("upstream_auth_failed");
  });
});
