/**
 * A deployment: one upstream model at one provider endpoint with its credentials, as the
 * router and the adapters see it. Built from a `model_list` entry, or on demand for a
 * direct `provider/model` name from the environment.
 */
import { createHash } from "node:crypto";
import type { Catalog, ModelSpec } from "../catalog/catalog.ts";
import { isProvider, PROVIDERS, type Provider } from "../catalog/providers.ts";
import { azureModelFor } from "../providers/azure/names.ts";
import { fillFromEnv } from "../providers/env.ts";
import { ConfigError, type Env } from "./env.ts";
import type { DeploymentParams } from "./schema.ts";

export interface Deployment {
  /** `model_info.id`, or a stable id derived from the entry. */
  readonly id: string;
  /** The public model name (model group) it serves. */
  readonly group: string;
  readonly provider: Provider;
  /** The upstream model id (for Azure: the deployment name). */
  readonly model: string;
  /** What the upstream model accepts. */
  readonly spec: ModelSpec;
  /** Provider parameters, environment already filled in. Holds secrets: never log it. */
  readonly params: DeploymentParams;
  /** Load-balancing weight (`weight`, else `rpm`, else 1). */
  readonly weight: number;
  /** Requests per minute this deployment may take. */
  readonly rpm: number | undefined;
  /** Requests it may have in flight at once. */
  readonly maxParallel: number | undefined;
  /** Priority tier: lower tiers are used only when no deployment of a higher one is healthy. */
  readonly order: number;
  readonly timeoutMs: number;
  readonly costPerImage: number | undefined;
  /** `model_info.base_model`, where given. */
  readonly baseModel?: string;
  /**
   * An Azure deployment whose name spells no known model and that has no `base_model`: its
   * spec admits what any Azure image model accepts, and startup says so.
   */
  readonly unknownModel?: true;
}

export const DEFAULT_TIMEOUT_SECONDS = 120;

/** Splits `provider/model` into its parts, or returns undefined when it has no known provider. */
export function parseDirectName(name: string): { provider: Provider; model: string } | undefined {
  const slash = name.indexOf("/");
  if (slash <= 0) return undefined;
  const provider = name.slice(0, slash);
  const model = name.slice(slash + 1);
  if (!isProvider(provider) || model === "") return undefined;
  return { provider, model };
}

export interface DeploymentInput {
  group: string;
  params: DeploymentParams;
  id?: string;
  costPerImage?: number;
  baseModel?: string;
  /** Where in the config this came from, for error messages. */
  where: string;
  defaultTimeoutSeconds: number;
}

export function buildDeployment(input: DeploymentInput, catalog: Catalog, env: Env): Deployment {
  const parsed = parseDirectName(input.params.model);
  if (parsed === undefined) {
    throw new ConfigError(
      `${input.where}.model: unknown provider in '${input.params.model}'; use one of ${PROVIDERS.map((p) => `${p}/`).join(", ")}`,
    );
  }
  const catalogModel = input.baseModel ?? parsed.model;
  // Azure deployment names are the operator's own: base_model, else the name, else unknown.
  const azure =
    parsed.provider === "azure" ? azureModelFor(catalog, parsed.model, input.baseModel) : undefined;
  const spec = azure !== undefined ? azure.spec : catalog.lookup(parsed.provider, catalogModel);
  if (spec === undefined) {
    const known = catalog
      .entries()
      .filter((e) => e.provider === parsed.provider)
      .map((e) => e.model);
    throw new ConfigError(
      `${input.where}.model: '${parsed.provider}/${catalogModel}' is not in the model catalog` +
        (known.length > 0 ? `; known ${parsed.provider} models: ${known.join(", ")}` : ""),
    );
  }
  const params = fillFromEnv(parsed.provider, input.params, env);
  return {
    id: input.id ?? stableId(input.group, params),
    group: input.group,
    provider: parsed.provider,
    model: parsed.model,
    spec,
    params,
    weight: params.weight ?? params.rpm ?? 1,
    rpm: params.rpm,
    maxParallel: params.max_parallel_requests,
    order: params.order ?? 1,
    timeoutMs: (params.timeout ?? input.defaultTimeoutSeconds) * 1000,
    costPerImage: input.costPerImage,
    ...(input.baseModel !== undefined ? { baseModel: input.baseModel } : {}),
    ...(azure?.kind === "unknown" ? { unknownModel: true as const } : {}),
  };
}

/** Same entry, same id across restarts; secrets never enter the hash. */
function stableId(group: string, params: DeploymentParams): string {
  const h = createHash("sha256")
    .update(
      `${group}\0${params.model}\0${params.api_base ?? ""}\0${params.vertex_location ?? ""}\0${params.aws_region_name ?? ""}`,
    )
    .digest("hex");
  return `${group.replace(/[^A-Za-z0-9._-]/g, "-")}-${h.slice(0, 8)}`;
}
