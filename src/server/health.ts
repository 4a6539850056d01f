/** `grpc.health.v1.Health`: SERVING while the gateway is ready, NOT_SERVING while it drains. */
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
  /** Resolves when the gateway starts draining. */
  readonly draining: Promise<void>;
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
    async *watch(req, ctx) {
      yield status(req.service);
      const ended = new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      await Promise.race([readiness.draining, ended]);
      if (!ctx.signal.aborted) yield status(req.service);
    },
  });
}
