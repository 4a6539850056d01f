/**
 * `npm run dev`: every provider served by its built-in emulator on loopback, and the
 * gateway wired to them through the same environment variables a real deployment uses.
 */
import { randomBytes } from "node:crypto";
import type { Env } from "../config/env.ts";
import { startOpenAIEmulator } from "../emulators/openai.ts";

/** One emulated provider, as `npm run dev` runs it. */
export interface DevEmulator {
  /** Environment entries pointing the provider at the emulator (credentials included). */
  env: Env;
  /** Where it listens, for the startup banner. */
  url: string;
  /**
   * Config YAML `model_list` entries (as a list of YAML items) the provider needs in dev,
   * e.g. Azure deployments; empty when direct `provider/model` names suffice.
   */
  modelList?: string;
  close(): Promise<void>;
}

/** Each provider's emulator starter. Adding a provider adds one entry here. */
const EMULATORS: Record<string, () => Promise<DevEmulator>> = {
  async openai() {
    const apiKey = `sk-emulator-${randomBytes(12).toString("hex")}`;
    const emulator = await startOpenAIEmulator({ apiKey, host: "127.0.0.1", port: 0 });
    return {
      env: { OPENAI_API_KEY: apiKey, OPENAI_BASE_URL: emulator.baseUrl },
      url: emulator.baseUrl,
      close: () => emulator.close(),
    };
  },
};

export interface DevProviders {
  env: Env;
  /** Config YAML for the dev gateway. */
  configYaml: string;
  /** Human-readable lines saying what is emulated where. */
  describe: string[];
  close(): Promise<void>;
}

export async function startDevProviders(): Promise<DevProviders> {
  const started = await Promise.all(Object.entries(EMULATORS).map(async ([name, start]) => ({ name, dev: await start() })));
  const items = started.map((s) => s.dev.modelList ?? "").filter((m) => m.trim() !== "");
  return {
    env: Object.assign({}, ...started.map((s) => s.dev.env)),
    configYaml: items.length > 0 ? `model_list:\n${items.join("\n")}\n` : "",
    describe: started.map((s) => `${s.name.padEnd(10)} emulated at ${s.dev.url}`),
    async close() {
      await Promise.all(started.map((s) => s.dev.close()));
    },
  };
}
