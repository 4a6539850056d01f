/**
 * `npm run dev`: every provider served by its built-in emulator on loopback, and the
 * gateway wired to them through the same environment variables a real deployment uses.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Catalog, loadCatalog } from "../catalog/catalog.ts";
import { ConfigError, type Env } from "../config/env.ts";

type Emulators = typeof import("@imagegate/emulators");

/** The emulators' npm workspace package (`packages/emulators`), a development dependency. */
const EMULATORS_PACKAGE = "@imagegate/emulators";

/**
 * The emulators, loaded only when `dev` starts them (`serve` never needs them). npm links the
 * workspace package on every install of the repository, even with `--omit=dev`; an install
 * with `--workspaces=false`, or a copy of the gateway without `packages/`, has none.
 */
async function loadEmulators(): Promise<Emulators> {
  try {
    return await import("@imagegate/emulators");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : "";
    if (code === "ERR_MODULE_NOT_FOUND" && message.includes(`'${EMULATORS_PACKAGE}'`)) {
      throw new ConfigError(
        `dev needs the provider emulators, the workspace package ${EMULATORS_PACKAGE} ` +
          "(packages/emulators), which this install lacks (npm ci --workspaces=false?): run " +
          "`npm ci` in a clone of the repository; `serve --config FILE` does not need them",
      );
    }
    if (code === "ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING") {
      throw new ConfigError(
        `dev needs ${EMULATORS_PACKAGE} to resolve to packages/emulators (the link \`npm ci\` ` +
          "makes; no --preserve-symlinks): under node_modules Node does not run TypeScript",
      );
    }
    throw err;
  }
}

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
const EMULATORS: Record<string, (emulators: Emulators) => Promise<DevEmulator>> = {
  async gemini(emulators) {
    const apiKey = `AIza${randomBytes(18).toString("base64url")}`;
    const emulator = await emulators.startGeminiEmulator({ apiKey, host: "127.0.0.1", port: 0 });
    return {
      env: { GEMINI_API_KEY: apiKey, GEMINI_API_BASE: emulator.baseUrl },
      url: emulator.baseUrl,
      close: () => emulator.close(),
    };
  },
  async vertex_ai(emulators) {
    // A throwaway service-account key (made by the emulator, which trusts it) in a private temp file.
    const emulator = await emulators.startVertexEmulator({ host: "127.0.0.1", port: 0 });
    const dir = await mkdtemp(join(tmpdir(), "imagegate-vertex-"));
    const keyFile = join(dir, "service-account.json");
    await writeFile(keyFile, JSON.stringify(emulator.serviceAccount, null, 2), { mode: 0o600 });
    return {
      env: {
        GOOGLE_APPLICATION_CREDENTIALS: keyFile,
        VERTEXAI_PROJECT: emulator.projectId,
        VERTEXAI_LOCATION: "us-central1",
        VERTEXAI_API_BASE: emulator.baseUrl,
      },
      url: emulator.baseUrl,
      async close() {
        await emulator.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  async azure(emulators) {
    // Deployments named after their models, so `azure/dall-e-3` and `azure/gpt-image-1` work as direct names.
    const apiKey = randomBytes(16).toString("hex");
    const emulator = await emulators.startAzureEmulator({ apiKey, host: "127.0.0.1", port: 0 });
    return {
      env: { AZURE_API_KEY: apiKey, AZURE_API_BASE: emulator.endpoint },
      url: emulator.endpoint,
      close: () => emulator.close(),
    };
  },
  async recraft(emulators) {
    const apiKey = randomBytes(24).toString("base64url");
    const emulator = await emulators.startRecraftEmulator({ apiKey, host: "127.0.0.1", port: 0 });
    return {
      env: { RECRAFT_API_KEY: apiKey, RECRAFT_API_BASE: emulator.baseUrl },
      url: emulator.baseUrl,
      close: () => emulator.close(),
    };
  },
  async bedrock(emulators) {
    // Throwaway temporary credentials (with a session token), checked by the emulator's SigV4.
    const credentials = {
      accessKeyId: `ASIA${randomBytes(8).toString("hex").toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(48).toString("base64"),
    };
    const emulator = await emulators.startBedrockEmulator({
      credentials: [credentials],
      region: "us-east-1",
      host: "127.0.0.1",
      port: 0,
    });
    return {
      env: {
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_SESSION_TOKEN: credentials.sessionToken,
        AWS_REGION: emulator.region,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: emulator.endpoint,
      },
      url: emulator.endpoint,
      close: () => emulator.close(),
    };
  },
  async openai(emulators) {
    const apiKey = `sk-emulator-${randomBytes(12).toString("hex")}`;
    const emulator = await emulators.startOpenAIEmulator({ apiKey, host: "127.0.0.1", port: 0 });
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

export async function startDevProviders(catalog: Catalog = loadCatalog()): Promise<DevProviders> {
  const emulators = await loadEmulators();
  const started = await Promise.all(
    Object.entries(EMULATORS).map(async ([name, start]) => ({ name, dev: await start(emulators) })),
  );
  const items = [
    ...started.map((s) => s.dev.modelList ?? "").filter((m) => m.trim() !== ""),
    directModelList(
      catalog,
      started.map((s) => s.name),
    ),
  ];
  const imagesDir = await mkdtemp(join(tmpdir(), "imagegate-dev-images-"));
  // A spend log for the console's Overview and Logs, forgotten with the rest on exit.
  const dataDir = await mkdtemp(join(tmpdir(), "imagegate-dev-data-"));
  return {
    env: Object.assign({}, ...started.map((s) => s.dev.env)),
    configYaml:
      (items.length > 0 ? `model_list:\n${items.join("\n")}\n` : "") +
      devConfig(
        imagesDir,
        started.map((s) => s.dev.url),
        join(dataDir, "spend.sqlite"),
      ),
    describe: started.map((s) => `${s.name.padEnd(10)} emulated at ${s.dev.url}`),
    async close() {
      await Promise.all(started.map((s) => s.dev.close()));
      await rm(imagesDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * One `model_list` entry per catalog model of each emulated provider, named by its direct
 * name (`openai/dall-e-3`) and resolving exactly as that direct name would: requests are
 * served as without it, and `GET /v1/models` (the console's playground) lists what dev serves.
 */
function directModelList(catalog: Catalog, providers: readonly string[]): string {
  return catalog
    .entries()
    .filter((spec) => providers.includes(spec.provider))
    .map((spec) => {
      const name = JSON.stringify(`${spec.provider}/${spec.model}`);
      return `  - model_name: ${name}\n    params:\n      model: ${name}\n    model_info:\n      id: ${name}`;
    })
    .join("\n");
}

/**
 * Images the gateway serves itself go to a temp folder that `npm run dev` removes on exit;
 * the emulators hand out image URLs on loopback, which the gateway fetches only from
 * addresses config lists (here: each emulator's origin). The spend log (the console's
 * Overview and Logs) goes to a temp file, removed on exit too.
 */
function devConfig(dir: string, emulatorUrls: readonly string[], spendDb: string): string {
  const origins = [...new Set(emulatorUrls.map((u) => new URL(u).origin))];
  return `general_settings:\n  allowed_image_hosts: ${JSON.stringify(origins)}\n  spend_db: ${JSON.stringify(spendDb)}\nstorage:\n  dir: ${JSON.stringify(dir)}\n`;
}
