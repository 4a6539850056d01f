/**
 * Several OpenAI emulators, one per deployment, behind one gateway: so faults can be
 * aimed at one deployment and each deployment's traffic counted.
 */
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type OpenAIEmulator, startOpenAIEmulator } from "@imagegate/emulators/openai";
import { silentLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import type { Telemetry } from "../../src/telemetry/telemetry.ts";
import { EMULATOR_KEY } from "./stack.ts";

export interface DeploymentSpec {
  id: string;
  group: string;
  model?: string;
  /** Extra `params` lines, e.g. "weight: 3". */
  params?: Record<string, string | number>;
}

export interface MultiStack {
  gateway: Gateway;
  url: string;
  /** The emulator behind each deployment id. */
  upstream: Record<string, OpenAIEmulator>;
  close(): Promise<void>;
}

export async function startMultiStack(
  deployments: DeploymentSpec[],
  routerSettings = "",
  telemetry?: Telemetry,
): Promise<MultiStack> {
  const upstream: Record<string, OpenAIEmulator> = {};
  for (const d of deployments)
    upstream[d.id] = await startOpenAIEmulator({
      apiKey: EMULATOR_KEY,
      host: "127.0.0.1",
      port: 0,
    });
  const items = deployments.map((d) => {
    const extra = Object.entries(d.params ?? {})
      .map(([k, v]) => `      ${k}: ${v}\n`)
      .join("");
    return `  - model_name: ${d.group}\n    params:\n      model: openai/${d.model ?? "dall-e-2"}\n      api_key: ${EMULATOR_KEY}\n      api_base: ${upstream[d.id]!.baseUrl}\n${extra}    model_info:\n      id: ${d.id}\n`;
  });
  const yaml = `model_list:\n${items.join("")}${routerSettings ? `router_settings:\n${routerSettings}` : ""}`;
  const catalog = loadCatalog();
  const config = parseConfig(yaml, { HOST: "127.0.0.1", PORT: "0" }, catalog, "test");
  const gateway = await startGateway({
    config,
    catalog,
    logger: silentLogger,
    telemetry,
    bufferPool: { poison: true, minPooledBytes: 1 },
  });
  return {
    gateway,
    url: gateway.url,
    upstream,
    async close() {
      await gateway.shutdown(1000);
      await Promise.all(Object.values(upstream).map((u) => u.close()));
    },
  };
}
