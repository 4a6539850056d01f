/**
 * `grpc.health.v1.Health/Check`: SERVING while the gateway is ready, NOT_SERVING while it
 * drains. `Watch` is not served (UNIMPLEMENTED, which the health protocol allows): probes
 * use `Check`, and an open stream per watcher, needing no key, is memory for anyone.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../gen/grpc/health/v1/health_pb.js";
import { ImageService } from "../gen/imagegate/v1/images_pb.js";

export interface Readiness {
  ready(): boolean;
}

const KNOWN = new Set(["", ImageService.typeName, Health.typeName]);

export function registerHealth(router: ConnectRouter, readiness: Readiness): void {
  const status = (service: string) => {
    if (!KNOWN.has(service)) throw new ConnectError(`unknown service ${service}`, Code.NotFound);
    return create(HealthCheckResponseSchema, {
      status: readiness.ready()
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.NOT_SERVING,
    });
  };
  router.service(Health, {
    check: (req) => status(req.service),
  });
}
