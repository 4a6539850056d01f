/**
 * Services any caller may use without a key, outside admission and the request telemetry:
 * the health check and reflection. Neither reaches a provider nor holds a secret, and
 * probes and tools must not be counted as API traffic.
 */
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

export const OPEN_SERVICES: ReadonlySet<string> = new Set([
  Health.typeName,
  ServerReflection.typeName,
  ServerReflectionV1Alpha.typeName,
]);
