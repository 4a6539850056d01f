/**
 * Test stack for Bedrock: the Bedrock emulator plus the usual stack (gateway + OpenAI
 * emulator), with the AWS environment variables pointing the gateway at the emulator.
 */
import { type BedrockEmulator, startBedrockEmulator } from "@imagegate/emulators/bedrock";
import type { AwsCredential } from "@imagegate/emulators/sigv4";
import { type Stack, type StackOptions, startStack } from "./stack.ts";

/** Long-term test credentials (AWS's documented example key shapes). */
export const AWS_TEST_CREDENTIALS: AwsCredential = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

/** Temporary test credentials: the emulator requires their session token. */
export const AWS_TEMP_CREDENTIALS: Required<AwsCredential> = {
  accessKeyId: "ASIAIOSFODNN7TEMPKEY",
  secretAccessKey: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE-session-token-for-tests",
};

export const AWS_TEST_REGION = "us-west-2";

export interface BedrockStack {
  stack: Stack;
  bedrock: BedrockEmulator;
  close(): Promise<void>;
}

export async function startBedrockStack(options: StackOptions = {}): Promise<BedrockStack> {
  const bedrock = await startBedrockEmulator({
    credentials: [AWS_TEST_CREDENTIALS, AWS_TEMP_CREDENTIALS],
    region: AWS_TEST_REGION,
    host: "127.0.0.1",
    port: 0,
  });
  try {
    const stack = await startStack({
      ...options,
      env: {
        AWS_ACCESS_KEY_ID: AWS_TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: AWS_TEST_CREDENTIALS.secretAccessKey,
        AWS_REGION: AWS_TEST_REGION,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.endpoint,
        ...options.env,
      },
    });
    return {
      stack,
      bedrock,
      async close() {
        await stack.close();
        await bedrock.close();
      },
    };
  } catch (e) {
    await bedrock.close();
    throw e;
  }
}
