/**
 * The `imagegate` command: `serve --config FILE` for real use, `dev` for the embedded
 * default with emulated providers.
 */
// First: protobuf-es picks its base64 encoder when it loads.
import "./runtime/base64.ts";
import { parseArgs } from "node:util";
import { loadCatalog } from "./catalog/catalog.ts";
import { ConfigError, type Env } from "./config/env.ts";
import { type GatewayConfig, loadConfigFile, parseConfig, parsePort } from "./config/load.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import { type Gateway, startGateway } from "./server/gateway.ts";
import { createTelemetry } from "./telemetry/telemetry.ts";

const USAGE = `usage:
  imagegate serve --config FILE [--host HOST] [--port PORT]
  imagegate dev [--host HOST] [--port PORT]`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: "string", short: "c" },
      port: { type: "string", short: "p" },
      host: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help || (command !== "serve" && command !== "dev")) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const dev = command === "dev";
  const logger = createLogger({ pretty: dev || process.stderr.isTTY === true });
  const catalog = loadCatalog();
  const overrides: Record<string, string> = {};
  if (values.port !== undefined) overrides.PORT = String(parsePort(values.port, "--port"));
  if (values.host !== undefined) overrides.HOST = values.host;

  let config: GatewayConfig;
  let closeProviders = async () => {};
  if (dev) {
    // Loaded only here: `serve` never needs the emulators (nor their memory).
    const { startDevProviders } = await import("./dev/dev.ts");
    const providers = await startDevProviders(catalog);
    closeProviders = providers.close;
    const env: Env = { ...process.env, ...providers.env, ...overrides };
    config = parseConfig(providers.configYaml, env, catalog, "dev");
    for (const line of providers.describe) logger.log("info", line);
  } else {
    if (values.config === undefined) throw new ConfigError("serve needs --config FILE");
    config = loadConfigFile(values.config, { ...process.env, ...overrides }, catalog);
  }
  for (const w of config.warnings) logger.log("warn", w);

  const telemetry = await createTelemetry({
    env: config.env,
    logFormat: dev ? "pretty" : "json",
    capturePrompts: config.capturePrompts,
  });
  const gateway = await startGateway({ config, catalog, logger, telemetry });
  announce(logger, gateway, config, dev);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.log("info", `${signal}: draining in-flight requests`);
      gateway
        .shutdown()
        .then(closeProviders)
        .then(() => telemetry.shutdown())
        .then(resolve, resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  logger.log("info", "stopped");
  return 0;
}

function announce(logger: Logger, gateway: Gateway, config: GatewayConfig, dev: boolean) {
  logger.log(
    "info",
    `imagegate listening on ${gateway.url} (gRPC, gRPC-Web, Connect and REST on one port)`,
  );
  logger.log("info", `  OpenAI SDK: new OpenAI({ baseURL: "${gateway.url}/v1", apiKey: "any" })`);
  logger.log("info", `  console: ${gateway.url}/ui/`);
  if (dev) logger.log("info", "  providers are emulated: no real provider is called");
  const groups = [...config.groups.keys()];
  if (dev) {
    // dev lists every emulated model by its direct name: too many for one line.
    logger.log(
      "info",
      `  models: ${groups.length} direct names such as ${groups.find((g) => g.startsWith("openai/")) ?? groups[0]} (GET /v1/models lists them)`,
    );
  } else if (groups.length > 0) logger.log("info", `  models: ${groups.join(", ")}`);
  if (config.masterKey === undefined && config.keys.length === 0) {
    const loopback = /^(127\.|::1$|localhost$)/.test(gateway.host);
    logger.log(
      loopback ? "warn" : "error",
      `no gateway keys configured: the gateway is open to anyone who can reach ${gateway.host}`,
    );
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (
      e instanceof ConfigError ||
      (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
    ) {
      process.stderr.write(`imagegate: ${(e as Error).message}\n`);
    } else {
      process.stderr.write(
        `imagegate: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
    }
    process.exit(1);
  },
);
