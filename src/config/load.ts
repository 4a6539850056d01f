/**
 * Reads the YAML config into a GatewayConfig. Any problem stops startup with one message
 * that names the key and the problem.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import type { z } from "zod";
import type { Catalog, ModelSpec } from "../catalog/catalog.ts";
import { lifecycleState, lifecycleWarning } from "../catalog/lifecycle.ts";
import { missingCredentials } from "../providers/env.ts";
import { DEFAULT_MODEL, type ModelAlias, modelAliases } from "./aliases.ts";
import { buildDeployment, DEFAULT_TIMEOUT_SECONDS, type Deployment } from "./deployment.ts";
import { ConfigError, type Env, substituteEnv } from "./env.ts";
import { checkKeys } from "./keys.ts";
import { type RedisSettings, redisSettings } from "./redis.ts";
import {
  ConfigFileSchema,
  IGNORED_PARAMS,
  IGNORED_SECTIONS,
  type KeyConfig,
  type RouterSettings,
} from "./schema.ts";
import {
  type DownloadSettings,
  downloadSettings,
  type StorageSettings,
  storageSettings,
} from "./storage.ts";

export interface ServerSettings {
  host: string;
  port: number;
  publicUrl: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  maxBodyBytes: number;
  /** `server.max_upload_bytes`: edits and variations, whose bodies carry images. */
  maxUploadBytes: number;
  maxConcurrent: number;
  maxQueued: number;
  clientTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  writeTimeoutMs: number;
  maxConnections: number;
  maxStreamsPerConnection: number;
}

export interface GatewayConfig {
  /** Model groups from `model_list`, in file order. */
  readonly groups: ReadonlyMap<string, readonly Deployment[]>;
  /** `router_settings.model_group_alias`: public names standing for other names. */
  readonly aliases: ReadonlyMap<string, ModelAlias>;
  /** `general_settings.default_model`: the model of requests that name none. */
  readonly defaultModel: string;
  readonly router: RouterSettings;
  /** The Redis replicas share (router_settings.redis_url, …, or REDIS_URL); none: in memory. */
  readonly redis: RedisSettings | undefined;
  readonly server: ServerSettings;
  readonly masterKey: string | undefined;
  readonly rehostUrls: boolean;
  readonly capturePrompts: boolean;
  /** The embedded database's file (or `:memory:`) as the config names it; undefined: the default (db/paths.ts). */
  readonly spendDb: string | undefined;
  /** `general_settings.database_url`, else DATABASE_URL: Postgres instead of the embedded file. */
  readonly databaseUrl: string | undefined;
  /** `general_settings.allow_requests_on_db_unavailable`: budgeted keys served while the database is down. */
  readonly allowRequestsOnDbUnavailable: boolean;
  /** `general_settings.spend_journal_dir`; undefined: `journal` in the data directory (db/paths.ts). */
  readonly spendJournalDir: string | undefined;
  readonly keys: readonly KeyConfig[];
  /** `general_settings.spend_logs_retention` in ms (default 30 days). */
  readonly spendLogsRetentionMs: number;
  /** `storage:` and `general_settings.url_signing_key`: images the gateway serves itself. */
  readonly storage: StorageSettings;
  /** `general_settings.allowed_image_hosts` and download limits: fetching provider image URLs. */
  readonly imageDownload: DownloadSettings;
  /** The environment direct `provider/model` names draw credentials from. */
  readonly env: Env;
  /** Things worth saying at startup that do not stop it. */
  readonly warnings: readonly string[];
}

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8080;
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENT = 512;
export const DEFAULT_MAX_QUEUED = 2048;
export const DEFAULT_CLIENT_TIMEOUT_SECONDS = 30;
export const DEFAULT_HEADERS_TIMEOUT_SECONDS = 10;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS = 65;
export const DEFAULT_WRITE_TIMEOUT_SECONDS = 60;
export const DEFAULT_MAX_CONNECTIONS = 4096;
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 256;

export function loadConfigFile(path: string, env: Env, catalog: Catalog): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  return parseConfig(text, env, catalog, path);
}

export function parseConfig(
  text: string,
  env: Env,
  catalog: Catalog,
  source = "config",
): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : "";
    throw new ConfigError(
      `${source}: invalid YAML${where}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(`${source}: the top level must be a mapping`);
  const unset = new Map<string, string>();
  const substituted = substituteEnv(raw, env, unset);
  const result = ConfigFileSchema.safeParse(substituted);
  if (!result.success) {
    // A typo'd key also makes the key it was meant to be missing; name the typo.
    const issues = result.error.issues;
    const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0]!;
    throw new ConfigError(`${source}: ${describeIssue(issue, unset)}`);
  }
  const file = result.data;
  const warnings: string[] = [];

  for (const section of Object.keys(file)) {
    if (IGNORED_SECTIONS.includes(section))
      warnings.push(`config: section '${section}' has no effect on imagegate`);
    else if (!(section in ConfigFileSchema.shape))
      throw new ConfigError(`${source}: unknown top-level key '${section}'`);
  }

  const masterKeyVar = unset.get("general_settings.master_key");
  if (masterKeyVar !== undefined) {
    // Starting open because a variable is missing would be a silent security hole.
    throw new ConfigError(
      `${source}: general_settings.master_key: environment variable ${masterKeyVar} is not set`,
    );
  }

  checkKeys(file.keys ?? [], file.general_settings?.master_key, source);

  const router = file.router_settings ?? {};
  const defaultTimeout = router.timeout ?? DEFAULT_TIMEOUT_SECONDS;
  const groups = new Map<string, Deployment[]>();
  const ids = new Set<string>();
  for (const [i, entry] of (file.model_list ?? []).entries()) {
    const key = entry.params !== undefined ? "params" : "litellm_params";
    const params = entry.params ?? entry.litellm_params!;
    const where = `model_list[${i}].${key}`;
    for (const p of IGNORED_PARAMS)
      if (p in params) warnings.push(`config: ${where}.${p} has no effect on image models`);
    let deployment = buildDeployment(
      {
        group: entry.model_name,
        params,
        id: entry.model_info?.id,
        costPerImage: entry.model_info?.output_cost_per_image,
        baseModel: entry.model_info?.base_model,
        where,
        defaultTimeoutSeconds: defaultTimeout,
      },
      catalog,
      env,
    );
    if (ids.has(deployment.id) && entry.model_info?.id === undefined) {
      // Generated ids leave secrets out, so entries differing only in credentials collide:
      // number the later ones, which keeps ids stable for an unchanged file.
      let n = 2;
      while (ids.has(`${deployment.id}-${n}`)) n++;
      deployment = { ...deployment, id: `${deployment.id}-${n}` };
    }
    if (ids.has(deployment.id))
      throw new ConfigError(
        `${source}: model_list[${i}].model_info.id: duplicate deployment id '${deployment.id}'`,
      );
    const missing = missingCredentials(deployment.provider, deployment.params);
    if (missing !== undefined) {
      const unsetVars = [...unset]
        .filter(([path]) => path.startsWith(`model_list[${i}].`))
        .map(([, name]) => name);
      const why = unsetVars.length > 0 ? ` (unset: ${unsetVars.join(", ")})` : "";
      throw new ConfigError(`${source}: ${where}: missing ${missing}${why}`);
    }
    if (deployment.unknownModel) {
      const known = catalog
        .entries()
        .filter((e) => e.provider === "azure")
        .map((e) => e.model);
      warnings.push(
        `config: ${where}: Azure deployment '${deployment.model}' (model '${entry.model_name}', deployment ${deployment.id}) does not name a known model: ` +
          `requests are checked only against what any Azure image model accepts, passed on, and counted unpriced; ` +
          `set model_info.base_model to the model it serves (one of: ${known.join(", ")})`,
      );
    }
    ids.add(deployment.id);
    const list = groups.get(entry.model_name) ?? [];
    list.push(deployment);
    groups.set(entry.model_name, list);
  }

  warnings.push(...lifecycleWarnings(groups, source === "dev"));

  const server = file.server ?? {};
  // An empty variable counts as unset, as everywhere in the config.
  const host = nonEmpty(env.HOST) ?? server.host ?? DEFAULT_HOST;
  const portText = nonEmpty(env.PORT);
  const port = portText !== undefined ? parsePort(portText, "PORT") : (server.port ?? DEFAULT_PORT);

  return {
    groups,
    aliases: modelAliases(file, groups, catalog, source),
    defaultModel: file.general_settings?.default_model ?? DEFAULT_MODEL,
    router,
    redis: redisSettings(router, env, source),
    server: {
      host,
      port,
      publicUrl: server.public_url?.replace(/\/+$/, ""),
      tls: server.tls && { certFile: server.tls.cert_file, keyFile: server.tls.key_file },
      maxBodyBytes: server.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES,
      maxUploadBytes: server.max_upload_bytes ?? DEFAULT_MAX_UPLOAD_BYTES,
      maxConcurrent: server.max_concurrent_requests ?? DEFAULT_MAX_CONCURRENT,
      maxQueued: server.max_queued_requests ?? DEFAULT_MAX_QUEUED,
      clientTimeoutMs: (server.client_timeout ?? DEFAULT_CLIENT_TIMEOUT_SECONDS) * 1000,
      headersTimeoutMs: (server.headers_timeout ?? DEFAULT_HEADERS_TIMEOUT_SECONDS) * 1000,
      keepAliveTimeoutMs: (server.keep_alive_timeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS) * 1000,
      writeTimeoutMs: (server.write_timeout ?? DEFAULT_WRITE_TIMEOUT_SECONDS) * 1000,
      maxConnections: server.max_connections ?? DEFAULT_MAX_CONNECTIONS,
      maxStreamsPerConnection:
        server.max_streams_per_connection ?? DEFAULT_MAX_STREAMS_PER_CONNECTION,
    },
    masterKey: file.general_settings?.master_key,
    rehostUrls: file.general_settings?.rehost_urls ?? false,
    capturePrompts: file.general_settings?.capture_prompts ?? false,
    spendDb: file.general_settings?.spend_db,
    databaseUrl: file.general_settings?.database_url ?? databaseUrlFromEnv(env, warnings),
    allowRequestsOnDbUnavailable: file.general_settings?.allow_requests_on_db_unavailable ?? false,
    spendJournalDir: file.general_settings?.spend_journal_dir,
    keys: file.keys ?? [],
    spendLogsRetentionMs: durationMs(file.general_settings?.spend_logs_retention ?? "30d"),
    storage: storageSettings(file),
    imageDownload: downloadSettings(file, source),
    env,
    warnings,
  };
}

/** `30s`, `10m`, `24h`, `30d` (checked by the schema) in milliseconds. */
function durationMs(text: string): number {
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[text.slice(-1) as "s"];
  return Number(text.slice(0, -1)) * unit;
}

/**
 * One warning per upstream model the config uses that its provider has shut down, shuts down
 * within NEAR_SHUTDOWN_DAYS or has deprecated (the catalog's lifecycle data), naming the
 * public names and deployments that use it. `dev` (every catalog model configured, all
 * emulated) says it in one line.
 */
function lifecycleWarnings(
  groups: ReadonlyMap<string, readonly Deployment[]>,
  dev: boolean,
  today = new Date(),
): string[] {
  const used = new Map<ModelSpec, { groups: Set<string>; deployments: string[] }>();
  for (const [group, deployments] of groups) {
    for (const d of deployments) {
      if (d.spec.lifecycle === undefined) continue;
      const entry = used.get(d.spec) ?? { groups: new Set<string>(), deployments: [] };
      entry.groups.add(group);
      entry.deployments.push(d.id);
      used.set(d.spec, entry);
    }
  }
  if (dev) {
    const retired = [...used.keys()].filter((spec) => lifecycleState(spec, today) !== undefined);
    if (retired.length === 0) return [];
    const names = retired.map((spec) => `${spec.provider}/${spec.model}`);
    return [
      `dev: ${names.length} catalog models are retired, retiring or deprecated at their providers (${names.join(", ")}); the emulators still serve them (see each provider page's lifecycle table)`,
    ];
  }
  const out: string[] = [];
  for (const [spec, usedBy] of used) {
    const line = lifecycleWarning(
      spec,
      { groups: [...usedBy.groups], deployments: usedBy.deployments },
      today,
    );
    if (line !== undefined) out.push(`config: ${line}`);
  }
  return out;
}

/** DATABASE_URL when it is a Postgres URL; another program's (mysql://…) is ignored, with a warning. */
function databaseUrlFromEnv(env: Env, warnings: string[]): string | undefined {
  const url = nonEmpty(env.DATABASE_URL);
  if (url === undefined || /^postgres(ql)?:\/\//.test(url)) return url;
  warnings.push("DATABASE_URL is not a postgresql:// URL: ignored; the embedded database is used");
  return undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

export function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`${what}: '${text}' is not a port number`);
  return port;
}

function describeIssue(issue: z.core.$ZodIssue, unset: Map<string, string>): string {
  const path = formatPath(issue.path);
  const envName = unset.get(path);
  if (envName !== undefined) return `${path}: environment variable ${envName} is not set`;
  if (issue.code === "unrecognized_keys") {
    return `${path === "" ? "" : `${path}: `}unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  }
  return `${path === "" ? "(top level)" : path}: ${issue.message}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path)
    out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out;
}
