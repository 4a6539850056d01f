/**
 * Runs a request against a model group's deployments. For now: the group's first
 * deployment, one attempt; weighted balancing, retries, cooldowns and fallbacks come with
 * the router issue behind this same interface.
 */
import type { Deployment } from "../config/deployment.ts";
import { GatewayError } from "../errors/errors.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import type { Provider } from "../providers/env.ts";
import type { GenerationResult, ProviderAdapter } from "../providers/types.ts";
import type { ModelGroup } from "./resolve.ts";

export interface RouteOutcome {
  result: GenerationResult;
  deployment: Deployment;
  /** The group that answered (after fallbacks). */
  group: string;
}

export interface AttemptListener {
  onAttempt(deployment: Deployment): void;
}

export class Router {
  private readonly adapters: ReadonlyMap<Provider, ProviderAdapter>;

  constructor(adapters: readonly ProviderAdapter[]) {
    this.adapters = new Map(adapters.map((a) => [a.provider, a]));
  }

  /** The deployment a request would be sent to first; validation checks against it. */
  primary(group: ModelGroup): Deployment {
    const d = group.deployments[0];
    if (d === undefined) throw new GatewayError("model_not_found", `The model '${group.name}' has no deployments.`, { param: "model" });
    return d;
  }

  async route(group: ModelGroup, request: CreateImageRequest, signal: AbortSignal, listener: AttemptListener): Promise<RouteOutcome> {
    const deployment = this.primary(group);
    const adapter = this.adapters.get(deployment.provider);
    if (adapter === undefined) {
      throw new GatewayError("invalid_request", `Provider '${deployment.provider}' is not available in this build.`, {
        param: "model",
        code: "provider_not_supported",
      });
    }
    listener.onAttempt(deployment);
    try {
      const result = await adapter.generate({ deployment, request, signal });
      return { result, deployment, group: group.name };
    } catch (e) {
      throw explainFailure(e, deployment);
    }
  }
}

/** Upstream failures name the deployment that failed; request errors pass unchanged. */
function explainFailure(e: unknown, deployment: Deployment): unknown {
  if (!(e instanceof GatewayError) || (e.kind !== "upstream" && e.kind !== "timeout")) return e;
  const status = e.kind === "timeout" ? "timeout" : (e.httpStatus ?? 502);
  return new GatewayError(e.kind, `All upstream attempts failed: [${deployment.id}] ${e.message}`, {
    code: e.code,
    httpStatus: e.httpStatus,
    retryAfterSeconds: e.retryAfterSeconds,
    attempts: [{ deployment: deployment.id, status, message: e.message }],
    cause: e,
  });
}
