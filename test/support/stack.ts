/**
 * Test stack: the OpenAI emulator plus a gateway on random loopback ports, configured
 * from YAML text (with the emulator's URL and key in the environment).
 */
import { loadCatalog } from "../../src/catalog/catalog.ts";
import type { Env } from "../../src/config/env.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type OpenAIEmulator, startOpenAIEmulator } from "@imagegate/emulators/openai";
import { type Logger, silentLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import type { Telemetry } from "../../src/telemetry/telemetry.ts";

export const EMULATOR_KEY = "sk-test-emulator-key-0123456789";

export interface Stack {
  gateway: Gateway;
  openai: OpenAIEmulator;
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Config YAML; `${OPENAI_API_KEY}` and `${OPENAI_BASE_URL}` point at the emulator. */
  yaml?: string;
  env?: Env;
  telemetry?: Telemetry;
  logger?: Logger;
  port?: number;
  tls?: { certFile: string; keyFile: string };
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const openai = await startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 });
  const catalog = loadCatalog();
  const env: Env = {
    OPENAI_API_KEY: EMULATOR_KEY,
    OPENAI_BASE_URL: openai.baseUrl,
    HOST: "127.0.0.1",
    PORT: String(options.port ?? 0),
    ...options.env,
  };
  let yaml = options.yaml ?? "";
  if (options.tls)
    yaml += `\nserver:\n  tls:\n    cert_file: ${options.tls.certFile}\n    key_file: ${options.tls.keyFile}\n`;
  const config = parseConfig(yaml, env, catalog, "test");
  const gateway = await startGateway({
    config,
    catalog,
    logger: options.logger ?? silentLogger,
    telemetry: options.telemetry,
    bufferPool: { poison: true, minPooledBytes: 1 },
  });
  return {
    gateway,
    openai,
    url: gateway.url,
    async close() {
      await gateway.shutdown(1000);
      await openai.close();
    },
  };
}
