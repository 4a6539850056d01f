/**
 * Where each provider's credentials come from when a deployment leaves them out
 * (contract: "Environment, for direct provider/model names"). Data, read in order:
 * the first variable that is set wins.
 */
import type { DeploymentParams } from "../config/schema.ts";

export const PROVIDERS = ["openai", "azure", "gemini", "vertex_ai", "bedrock", "recraft"] as const;
export type Provider = (typeof PROVIDERS)[number];

export function isProvider(name: string): name is Provider {
  return (PROVIDERS as readonly string[]).includes(name);
}

type ParamKey = Exclude<keyof DeploymentParams, "model">;

export const PROVIDER_ENV: Record<Provider, Partial<Record<ParamKey, readonly string[]>>> = {
  openai: { api_key: ["OPENAI_API_KEY"], api_base: ["OPENAI_BASE_URL"] },
  azure: {
    api_key: ["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
    api_base: ["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
    api_version: ["AZURE_API_VERSION", "OPENAI_API_VERSION"],
    azure_authority_host: ["AZURE_AUTHORITY_HOST"],
  },
  gemini: { api_key: ["GEMINI_API_KEY", "GOOGLE_API_KEY"], api_base: ["GEMINI_API_BASE"] },
  vertex_ai: {
    vertex_credentials: ["GOOGLE_APPLICATION_CREDENTIALS"],
    vertex_project: ["VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT"],
    vertex_location: ["VERTEXAI_LOCATION", "GOOGLE_CLOUD_LOCATION"],
    api_base: ["VERTEXAI_API_BASE"],
  },
  bedrock: {
    aws_access_key_id: ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key: ["AWS_SECRET_ACCESS_KEY"],
    aws_session_token: ["AWS_SESSION_TOKEN"],
    aws_region_name: ["AWS_REGION", "AWS_DEFAULT_REGION"],
    api_base: ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"],
  },
  recraft: { api_key: ["RECRAFT_API_KEY"], api_base: ["RECRAFT_API_BASE"] },
};

/** Fills what `params` leaves out from the environment; the deployment's own values win. */
export function fillFromEnv(
  provider: Provider,
  params: DeploymentParams,
  env: Readonly<Record<string, string | undefined>>,
): DeploymentParams {
  const out: DeploymentParams = { ...params };
  for (const [key, names] of Object.entries(PROVIDER_ENV[provider]) as [
    ParamKey,
    readonly string[],
  ][]) {
    if (out[key] !== undefined) continue;
    const name = names.find((n) => env[n] !== undefined && env[n] !== "");
    if (name !== undefined) (out as Record<string, unknown>)[key] = env[name];
  }
  return out;
}

/** Credentials each provider needs, as alternatives: any one group fully set is enough. */
const REQUIRED: Record<Provider, readonly (readonly ParamKey[])[]> = {
  openai: [["api_key"]],
  azure: [
    ["api_base", "api_key"],
    ["api_base", "azure_ad_token"],
    ["api_base", "tenant_id", "client_id", "client_secret"],
  ],
  gemini: [["api_key"]],
  vertex_ai: [["vertex_credentials", "vertex_project"]],
  bedrock: [["aws_access_key_id", "aws_secret_access_key", "aws_region_name"]],
  recraft: [["api_key"]],
};

/** Says what is missing for `provider` to be callable, naming params and variables; undefined when complete. */
export function missingCredentials(
  provider: Provider,
  params: DeploymentParams,
): string | undefined {
  const groups = REQUIRED[provider];
  if (groups.some((g) => g.every((k) => params[k] !== undefined))) return undefined;
  const first = groups[0]!.filter((k) => params[k] === undefined);
  const env = PROVIDER_ENV[provider];
  return first.map((k) => (env[k] ? `${k} (or ${env[k].join(" / ")})` : k)).join(", ");
}

/** Deployment params that hold secrets. */
export const SECRET_PARAMS = [
  "api_key",
  "client_secret",
  "azure_ad_token",
  "aws_secret_access_key",
  "aws_session_token",
] as const;

/** The environment variables any provider reads a secret from. */
export function secretEnvNames(): string[] {
  return Object.values(PROVIDER_ENV).flatMap((vars) => SECRET_PARAMS.flatMap((k) => vars[k] ?? []));
}
