/**
 * Public names that stand for others: `router_settings.model_group_alias` (LiteLLM's key)
 * and `general_settings.default_model`. Checked at load, so a typo stops the config rather
 * than becoming a 404 on the first request.
 */
import type { Catalog } from "../catalog/catalog.ts";
import { parseDirectName } from "./deployment.ts";
import { ConfigError } from "./env.ts";
import type { ConfigFile } from "./schema.ts";

/** The contract's model for a request that names none. */
export const DEFAULT_MODEL = "openai/dall-e-3";

export interface ModelAlias {
  /** The name requests for the alias are served as. */
  readonly target: string;
  /** Served, but not listed by `GET /v1/models`. */
  readonly hidden: boolean;
}

export function modelAliases(
  file: ConfigFile,
  groups: ReadonlyMap<string, unknown>,
  catalog: Catalog,
  source: string,
): ReadonlyMap<string, ModelAlias> {
  const aliases = new Map<string, ModelAlias>();
  const entries = Object.entries(file.router_settings?.model_group_alias ?? {});
  for (const [name, value] of entries) {
    const where = `${source}: router_settings.model_group_alias.${name}`;
    const alias =
      typeof value === "string"
        ? { target: value, hidden: false }
        : { target: value.model, hidden: value.hidden ?? false };
    if (groups.has(name))
      throw new ConfigError(`${where}: '${name}' is also a model_list model_name; rename one`);
    if (alias.target === name) throw new ConfigError(`${where}: an alias cannot name itself`);
    if (Object.hasOwn(file.router_settings?.model_group_alias ?? {}, alias.target))
      throw new ConfigError(
        `${where}: '${alias.target}' is itself an alias; point at the model it stands for`,
      );
    checkTarget(alias.target, `${where}${typeof value === "string" ? "" : ".model"}`);
    aliases.set(name, alias);
  }
  const defaultModel = file.general_settings?.default_model;
  if (defaultModel !== undefined && !aliases.has(defaultModel))
    checkTarget(defaultModel, `${source}: general_settings.default_model`);
  return aliases;

  function checkTarget(target: string, where: string): void {
    if (groups.has(target)) return;
    const direct = parseDirectName(target);
    // Azure deployment names are the operator's own: any name serves (config/deployment.ts).
    if (direct !== undefined && direct.provider === "azure") return;
    const known =
      direct !== undefined
        ? catalog.lookup(direct.provider, direct.model)
        : catalog.lookup("openai", target);
    if (known === undefined)
      throw new ConfigError(
        `${where}: '${target}' is neither a model_list model_name nor a provider/model the catalog knows`,
      );
  }
}
