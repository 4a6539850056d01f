/**
 * `npm run dev`: every provider served by its built-in emulator on loopback, and the
 * gateway wired to them through the same environment variables a real deployment uses.
 */
import { randomBytes } from "node:crypto";
import type { Env } from "../config/env.ts";
import { startOpenAIEmulator } from "../emulators/openai.ts";

export interface DevProviders {
  /** Environment entries pointing each provider at its emulator. */
  env: Env;
  /** Human-readable lines saying what is emulated where. */
  describe: string[];
  close(): Promise<void>;
}

export async function startDevProviders(): Promise<DevProviders> {
  const openaiKey = `sk-emulator-${randomBytes(12).toString("hex")}`;
  const openai = await startOpenAIEmulator({ apiKey: openaiKey, host: "127.0.0.1", port: 0 });
  return {
    env: { OPENAI_API_KEY: openaiKey, OPENAI_BASE_URL: openai.baseUrl },
    describe: [`openai     emulated at ${openai.baseUrl}`],
    async close() {
      await openai.close();
    },
  };
}
