/**
 * Where each provider's credentials come from when a deployment leaves them out (contract:
 * "Environment, for direct provider/model names"), and whether a deployment has what its
 * provider needs: built from the descriptors' `env` and `requires` (index.ts).
 */
import type { Provider } from "../catalog/providers.ts";
import { DESCRIPTORS } from "./index.ts";
import { type ParamKey, type ProviderParams, SECRET_PARAMS } from "./params.ts";

export { SECRET_PARAMS };

/**
 * Fills what `params` leaves out from the environment; the deployment's own values win. A
 * credential unit (descriptor `units`) the deployment sets any part of is left as it is: the
 * environment never completes half of a credential.
 */
export function fillFromEnv<P extends ProviderParams>(
  provider: Provider,
  params: P,
  env: Readonly<Record<string, string | undefined>>,
): P {
  const out: P = { ...params };
  const { units = [] } = DESCRIPTORS[provider];
  const own = new Set(
    units
      .filter((u) => [...u.keys, ...(u.instead ?? [])].some((k) => params[k] !== undefined))
      .flatMap((u) => u.keys),
  );
  for (const [key, names] of Object.entries(DESCRIPTORS[provider].env) as [
    ParamKey,
    readonly string[],
  ][]) {
    if (out[key] !== undefined || own.has(key)) continue;
    const name = names.find((n) => env[n] !== undefined && env[n] !== "");
    if (name !== undefined) (out as Record<string, unknown>)[key] = env[name];
  }
  return out;
}

/** Says what is missing for `provider` to be callable, naming params and variables; undefined when complete. */
export function missingCredentials(provider: Provider, params: ProviderParams): string | undefined {
  const { requires: groups, env, units = [] } = DESCRIPTORS[provider];
  for (const unit of units) {
    if (!unit.keys.some((k) => params[k] !== undefined)) continue;
    const half = unit.needs.filter((k) => params[k] === undefined);
    if (half.length > 0)
      return `${half.join(", ")} (a credential is not completed from the environment)`;
  }
  if (groups.some((g) => g.every((k) => params[k] !== undefined))) return undefined;
  const first = groups[0]!.filter((k) => params[k] === undefined);
  return first
    .map((k) => {
      const names = env[k];
      return names ? `${k} (or ${names.join(" / ")})` : k;
    })
    .join(", ");
}

/** The environment variables any provider reads a secret from. */
export function secretEnvNames(): string[] {
  return Object.values(DESCRIPTORS).flatMap((d) => SECRET_PARAMS.flatMap((k) => d.env[k] ?? []));
}
