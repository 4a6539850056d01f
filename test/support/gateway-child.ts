/**
 * A gateway in its own process, for tests that measure what the gateway holds (memory,
 * sockets) apart from the test's own clients. Config YAML and environment come in
 * `IMAGEGATE_CHILD_CONFIG` (JSON: { yaml, env }); over IPC it says `{ port }` once listening
 * and answers "memory" (after full collections) and "connections".
 * Run by test/support/gateway-process.ts with --expose-gc.
 */
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { startGateway } from "../../src/server/gateway.ts";

const { yaml, env } = JSON.parse(process.env.IMAGEGATE_CHILD_CONFIG ?? "{}") as {
  yaml: string;
  env: Record<string, string>;
};
const catalog = loadCatalog();
const config = parseConfig(yaml, { HOST: "127.0.0.1", PORT: "0", ...env }, catalog, "child");
const gateway = await startGateway({ config, catalog, logger: silentLogger });
const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", async (message: { id: number; op: "memory" | "connections" }) => {
  if (message.op === "memory") {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc?.();
    }
    process.send?.({ id: message.id, value: process.memoryUsage() });
  } else {
    process.send?.({ id: message.id, value: await gateway.connections() });
  }
});
process.on("disconnect", () => process.exit(0));
process.send?.({ port: gateway.port });
