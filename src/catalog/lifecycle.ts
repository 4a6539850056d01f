/**
 * A model's place in its provider's lifecycle (the catalog's `lifecycle:` data), read two
 * ways: what startup says about configured models that are retired or about to be, and the
 * message of the 404 that an upstream's "no such model" for a retired model becomes. Pure
 * functions of the entry and the day; requests for a retired model still go to the provider
 * (providers retire on their own schedules, Azure region by region).
 */
import type { LifecycleSpec, ModelSpec } from "./catalog.ts";

/** A shutdown this close is "near" at startup: OpenAI gives image models at least 3 months' notice. */
export const NEAR_SHUTDOWN_DAYS = 90;

const DAY_MS = 24 * 60 * 60 * 1000;

export type LifecycleState =
  | { state: "retired"; shutdown: string }
  | { state: "retiring"; shutdown: string; days: number }
  | { state: "deprecated"; deprecated: string };

/** Where `spec` stands on `today` (UTC), or undefined when nothing is announced that matters yet. */
export function lifecycleState(spec: ModelSpec, today: Date): LifecycleState | undefined {
  const life = spec.lifecycle;
  if (life === undefined) return undefined;
  const now = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  if (life.shutdown !== undefined) {
    const at = Date.parse(`${life.shutdown}T00:00:00Z`);
    if (at <= now) return { state: "retired", shutdown: life.shutdown };
    const days = Math.round((at - now) / DAY_MS);
    if (days <= NEAR_SHUTDOWN_DAYS) return { state: "retiring", shutdown: life.shutdown, days };
  }
  if (life.deprecated !== undefined && Date.parse(`${life.deprecated}T00:00:00Z`) <= now)
    return { state: "deprecated", deprecated: life.deprecated };
  return undefined;
}

/** "successor bedrock/x" and the source, for the end of a message. */
function successorAndSource(provider: string, life: LifecycleSpec): string {
  const successor =
    life.successor !== undefined ? `; successor: ${provider}/${life.successor}` : "";
  const note = life.note !== undefined ? ` (${life.note})` : "";
  return `${successor}${note}; source: ${life.source} (checked ${life.checked})`;
}

/**
 * The startup warning for one upstream model that `deployments` (ids) serve under the public
 * names `groups`, or undefined when its lifecycle gives nothing to warn about.
 */
export function lifecycleWarning(
  spec: ModelSpec,
  usedBy: { groups: readonly string[]; deployments: readonly string[] },
  today: Date,
): string | undefined {
  const state = lifecycleState(spec, today);
  if (state === undefined) return undefined;
  const life = spec.lifecycle!;
  const model = `${spec.provider}/${spec.model}`;
  const groups = usedBy.groups.map((g) => `'${g}'`).join(", ");
  const where = `model ${groups} (deployment${usedBy.deployments.length === 1 ? "" : "s"} ${usedBy.deployments.join(", ")}, ${model})`;
  const tail = successorAndSource(spec.provider, life);
  switch (state.state) {
    case "retired":
      return `${where}: ${spec.provider} shut ${spec.model} down on ${state.shutdown} (requests still go to it; its "no such model" is a 404 naming the successor)${tail}`;
    case "retiring":
      return `${where}: ${spec.provider} shuts ${spec.model} down on ${state.shutdown} (in ${state.days} day${state.days === 1 ? "" : "s"})${tail}`;
    case "deprecated":
      return `${where}: ${spec.provider} deprecated ${spec.model} on ${state.deprecated}${tail}`;
  }
}

/**
 * The message of the 404 for a model whose upstream no longer serves it: the public name the
 * client sent, the upstream model, its shutdown date and successor when the catalog knows
 * them, and the upstream's own words.
 */
export function retiredMessage(
  group: string,
  spec: ModelSpec,
  upstreamModel: string,
  upstreamMessage: string,
): string {
  const life = spec.lifecycle;
  const model = `${spec.provider}/${upstreamModel}`;
  const name = group === model ? `'${model}'` : `'${group}' (${model})`;
  const when = life?.shutdown !== undefined ? ` (shutdown ${life.shutdown})` : "";
  const successor =
    life?.successor !== undefined
      ? ` Its successor is '${spec.provider}/${life.successor}'.`
      : " The catalog names no successor.";
  return `The model ${name} has been retired by ${spec.provider}${when}.${successor} Upstream: ${upstreamMessage}`;
}
