/**
 * Model names → model groups: a public name from `model_list`, a direct
 * `provider/upstream-model` (credentials from the environment), a bare OpenAI model name
 * as OpenAI SDK users write it, an alias (`router_settings.model_group_alias`) of any of
 * these, or nothing (`general_settings.default_model`, else the contract's `openai/dall-e-3`).
 */
import type { Catalog } from "../catalog/catalog.ts";
import { buildDeployment, type Deployment, parseDirectName } from "../config/deployment.ts";
import type { GatewayConfig } from "../config/load.ts";
export { DEFAULT_MODEL } from "../config/aliases.ts";
import { ConfigError } from "../config/env.ts";
import { GatewayError } from "../errors/errors.ts";
import { missingCredentials } from "../providers/env.ts";

export interface ModelGroup {
  /** The name reported as `x-imagegate-model`. */
  readonly name: string;
  readonly deployments: readonly Deployment[];
  /** The alias the request named, when it named one (`name` is what it stands for). */
  readonly alias?: string;
}

export class ModelResolver {
  private readonly direct = new Map<string, ModelGroup>();
  private readonly aliased = new Map<string, ModelGroup>();
  private readonly config: GatewayConfig;
  private readonly catalog: Catalog;

  constructor(config: GatewayConfig, catalog: Catalog) {
    this.config = config;
    this.catalog = catalog;
  }

  resolve(requested: string | undefined): ModelGroup {
    const name = requested === undefined || requested === "" ? this.config.defaultModel : requested;
    const alias = this.config.aliases.get(name);
    if (alias !== undefined) return this.aliasGroup(name, alias.target);
    return this.target(name);
  }

  /** An alias's group: what it stands for, remembering the name asked for. */
  private aliasGroup(name: string, target: string): ModelGroup {
    const cached = this.aliased.get(name);
    if (cached !== undefined) return cached;
    const group = { ...this.target(target), alias: name };
    this.aliased.set(name, group);
    return group;
  }

  private target(name: string): ModelGroup {
    const deployments = this.config.groups.get(name);
    if (deployments !== undefined) return { name, deployments };
    const cached = this.direct.get(name);
    if (cached !== undefined) return cached;
    const group = this.directGroup(name);
    this.direct.set(name, group);
    return group;
  }

  /** Every deployment known so far: the config's, and direct names resolved since start. */
  deployments(): Deployment[] {
    return [
      ...this.config.groups.values(),
      ...[...this.direct.values()].map((g) => g.deployments),
    ].flat();
  }

  private directGroup(name: string): ModelGroup {
    const parsed =
      parseDirectName(name) ??
      (this.catalog.lookup("openai", name)
        ? { provider: "openai" as const, model: name }
        : undefined);
    // Azure deployment names are the operator's own: any name serves (config/deployment.ts).
    if (
      parsed === undefined ||
      (parsed.provider !== "azure" &&
        this.catalog.lookup(parsed.provider, parsed.model) === undefined)
    )
      throw notFound(name);
    const fullName = `${parsed.provider}/${parsed.model}`;
    let deployment: Deployment;
    try {
      deployment = buildDeployment(
        {
          group: fullName,
          params: { model: fullName },
          id: fullName,
          where: "model",
          defaultTimeoutSeconds: this.config.router.timeout ?? 120,
        },
        this.catalog,
        this.config.env,
      );
    } catch (e) {
      if (e instanceof ConfigError) throw notFound(name);
      throw e;
    }
    const missing = missingCredentials(deployment.provider, deployment.params);
    if (missing !== undefined) {
      throw new GatewayError(
        "invalid_request",
        `The model '${fullName}' is not configured on this gateway: missing ${missing}.`,
        {
          param: "model",
          code: "model_not_configured",
        },
      );
    }
    return { name: fullName, deployments: [deployment] };
  }
}

function notFound(name: string): GatewayError {
  return new GatewayError(
    "model_not_found",
    `The model '${name}' does not exist or you do not have access to it.`,
    {
      param: "model",
    },
  );
}
