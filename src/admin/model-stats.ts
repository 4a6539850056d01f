/**
 * `/model/stats`: each deployment's state now, as this replica's router sees it: in
 * rotation or cooling down (and until when), upstream requests in flight, and the recent
 * window's attempts, error rate and latency percentiles. Read-only; no params, no secrets.
 */
import { create } from "@bufbuild/protobuf";
import type { Deployment } from "../config/deployment.ts";
import {
  DeploymentStatsSchema,
  type GetModelStatsResponse,
  GetModelStatsResponseSchema,
} from "../gen/imagegate/admin/v1/admin_pb.js";
import type { DeploymentStatus } from "../router/router.ts";

export interface ModelStatsSource {
  deployments(): readonly Deployment[];
  status(id: string): DeploymentStatus;
  statusWindowMs: number;
}

export function modelStats(source: ModelStatsSource): GetModelStatsResponse {
  return create(GetModelStatsResponseSchema, {
    windowSeconds: Math.round(source.statusWindowMs / 1000),
    data: source.deployments().map((d) => {
      const s = source.status(d.id);
      return create(DeploymentStatsSchema, {
        id: d.id,
        modelName: d.group,
        provider: d.provider,
        model: d.model,
        inRotation: s.cooldownUntil === undefined,
        cooldownUntil:
          s.cooldownUntil === undefined ? undefined : new Date(s.cooldownUntil).toISOString(),
        inFlight: s.inflight,
        attempts: s.attempts,
        failures: s.failures,
        errorRate: s.errorRate,
        latencyP50Ms: s.latencyP50,
        latencyP95Ms: s.latencyP95,
      });
    }),
  });
}
