/**
 * Test stack for Google: the AI Studio and Vertex AI emulators plus the usual stack
 * (gateway + OpenAI emulator), with the Google environment variables pointing the gateway
 * at them. The Vertex key is the emulator's own throwaway service account, written to a
 * temp file as GOOGLE_APPLICATION_CREDENTIALS; BAD_VERTEX_CREDENTIALS names a key with the
 * same account and key id but another RSA key (its signature must be refused).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GeminiEmulator, startGeminiEmulator } from "@imagegate/emulators/gemini";
import {
  generateServiceAccountKey,
  startVertexEmulator,
  type VertexEmulator,
} from "@imagegate/emulators/vertex";
import { type Stack, type StackOptions, startStack } from "./stack.ts";

export const GEMINI_TEST_KEY = "AIzaSy-test-emulator-key-0123456789";
export const VERTEX_TEST_PROJECT = "imagegate-test";
export const VERTEX_TEST_LOCATION = "europe-west4";

export interface GoogleStack {
  stack: Stack;
  gemini: GeminiEmulator;
  vertex: VertexEmulator;
  /** Path of the trusted service-account key file. */
  keyFile: string;
  /** Path of a key file whose signature the emulator refuses. */
  badKeyFile: string;
  close(): Promise<void>;
}

export async function startGoogleStack(options: StackOptions = {}): Promise<GoogleStack> {
  const gemini = await startGeminiEmulator({ apiKey: GEMINI_TEST_KEY });
  const vertex = await startVertexEmulator({ projectId: VERTEX_TEST_PROJECT });
  const dir = await mkdtemp(join(tmpdir(), "imagegate-google-test-"));
  const cleanup = async () => {
    await gemini.close();
    await vertex.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const keyFile = join(dir, "sa.json");
    const badKeyFile = join(dir, "sa-wrong-key.json");
    const sa = vertex.serviceAccount;
    const impostor = generateServiceAccountKey({
      tokenUri: sa.token_uri,
      projectId: sa.project_id,
      clientEmail: sa.client_email,
      privateKeyId: sa.private_key_id,
    });
    await writeFile(keyFile, JSON.stringify(sa), { mode: 0o600 });
    await writeFile(badKeyFile, JSON.stringify(impostor), { mode: 0o600 });
    const stack = await startStack({
      ...options,
      env: {
        GEMINI_API_KEY: GEMINI_TEST_KEY,
        GEMINI_API_BASE: gemini.baseUrl,
        GOOGLE_APPLICATION_CREDENTIALS: keyFile,
        VERTEXAI_PROJECT: VERTEX_TEST_PROJECT,
        VERTEXAI_LOCATION: VERTEX_TEST_LOCATION,
        VERTEXAI_API_BASE: vertex.baseUrl,
        BAD_VERTEX_CREDENTIALS: badKeyFile,
        ...options.env,
      },
    });
    return {
      stack,
      gemini,
      vertex,
      keyFile,
      badKeyFile,
      async close() {
        await stack.close();
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
