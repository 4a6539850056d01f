/**
 * Where a Bedrock deployment's AWS credentials come from: a static pair given in the
 * deployment is one unit (the environment's session token never joins it), checked by the
 * Bedrock emulator, which verifies SigV4 and accepts exactly the credentials it was given.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BedrockEmulator, startBedrockEmulator } from "@imagegate/emulators/bedrock";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { bedrockAdapter } from "../../src/providers/bedrock/adapter.ts";
import { fillFromEnv } from "../../src/providers/env.ts";
import type { ProviderParams } from "../../src/providers/params.ts";
import type { AdapterDeployment } from "../../src/providers/types.ts";
import {
  AWS_TEMP_CREDENTIALS,
  AWS_TEST_CREDENTIALS,
  AWS_TEST_REGION,
} from "../support/bedrock-stack.ts";

const catalog = loadCatalog();
let bedrock: BedrockEmulator;

beforeAll(async () => {
  bedrock = await startBedrockEmulator({
    credentials: [AWS_TEST_CREDENTIALS, AWS_TEMP_CREDENTIALS],
    region: AWS_TEST_REGION,
    host: "127.0.0.1",
    port: 0,
  });
});
afterAll(async () => {
  await bedrock?.close();
});

/** The one deployment of a config with `params`, under `env`. */
function deploymentOf(params: string, env: Record<string, string>): AdapterDeployment {
  const yaml = `model_list:\n  - model_name: titan\n    params:\n      model: bedrock/amazon.titan-image-generator-v1\n${params}`;
  const config = parseConfig(yaml, env, catalog, "test.yaml");
  return config.groups.get("titan")![0]!;
}

function generate(deployment: AdapterDeployment) {
  return bedrockAdapter.generate({
    deployment,
    request: create(CreateImageRequestSchema, { prompt: "a red fox" }),
    signal: new AbortController().signal,
  });
}

/** The environment of a host whose own credentials are temporary (a role session). */
const roleSessionEnv = (): Record<string, string> => ({
  AWS_ACCESS_KEY_ID: AWS_TEMP_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: AWS_TEMP_CREDENTIALS.secretAccessKey,
  AWS_SESSION_TOKEN: AWS_TEMP_CREDENTIALS.sessionToken,
  AWS_REGION: AWS_TEST_REGION,
  AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.endpoint,
});

describe("a static key pair in a deployment is one unit", () => {
  it("is signed without the environment's session token", async () => {
    const d = deploymentOf(
      `      aws_access_key_id: ${AWS_TEST_CREDENTIALS.accessKeyId}\n      aws_secret_access_key: ${AWS_TEST_CREDENTIALS.secretAccessKey}\n`,
      roleSessionEnv(),
    );
    expect(d.params.aws_session_token).toBeUndefined();
    const from = bedrock.requests.length;
    const result = await generate(d);
    expect(result.images).toHaveLength(1);
    expect(bedrock.requests[from]!.headers["x-amz-security-token"]).toBeUndefined();
  });

  it("keeps its own session token, and the environment's pair and token stay together", async () => {
    const own = deploymentOf(
      `      aws_access_key_id: ${AWS_TEMP_CREDENTIALS.accessKeyId}\n      aws_secret_access_key: ${AWS_TEMP_CREDENTIALS.secretAccessKey}\n      aws_session_token: ${AWS_TEMP_CREDENTIALS.sessionToken}\n`,
      { ...roleSessionEnv(), AWS_SESSION_TOKEN: "another-session-token" },
    );
    expect((await generate(own)).images).toHaveLength(1);
    const fromEnv = deploymentOf("", roleSessionEnv());
    expect(fromEnv.params.aws_session_token).toBe(AWS_TEMP_CREDENTIALS.sessionToken);
    expect((await generate(fromEnv)).images).toHaveLength(1);
  });

  it("is never completed from the environment (half a pair stays half)", () => {
    const own: ProviderParams = { aws_access_key_id: AWS_TEST_CREDENTIALS.accessKeyId };
    const params = fillFromEnv("bedrock", own, roleSessionEnv());
    expect(params.aws_secret_access_key).toBeUndefined();
    expect(params.aws_session_token).toBeUndefined();
    expect(params.aws_region_name).toBe(AWS_TEST_REGION);
  });
});
