/**
 * Services any caller may use without a key, outside admission and the request telemetry:
 * the health check and reflection. Neither reaches a provider nor holds a secret, and
 * probes and tools must not be counted as API traffic.
 */
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { REFLECTION_SERVICES } from "./reflection.ts";

export const OPEN_SERVICES: ReadonlySet<string> = new Set([
  Health.typeName,
  ...REFLECTION_SERVICES,
]);
