/**
 * Interceptors every call passes through, whichever protocol carried it (gRPC, gRPC-Web,
 * Connect, or REST).
 */
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { GatewayError } from "../errors/errors.ts";
import { toConnectError } from "../errors/render.ts";
import type { Logger } from "../log/logger.ts";
import { watchStream } from "../call/stream-hooks.ts";
import {
  type CallInfo,
  formatUsd,
  HEADER,
  kCallInfo,
  kViaRest,
  requestIdFrom,
  type WireProtocol,
  writeCallHeaders,
} from "../call/call-info.ts";

function protocolOf(contentType: string | null, viaRest: boolean): WireProtocol {
  if (viaRest) return "rest";
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * Gives each call its request id and CallInfo, reports them as response headers on
 * success and failure alike, and turns every thrown value into the contract's error.
 */
export function callInfoInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const info: CallInfo = {
      requestId: requestIdFrom(req.header.get("x-request-id")),
      protocol: protocolOf(req.header.get("content-type"), req.contextValues.get(kViaRest)),
      attempts: 0,
      events: [],
    };
    req.contextValues.set(kCallInfo, info);
    const fail = (e: unknown) => {
      if (!(e instanceof GatewayError) && !(e instanceof ConnectError)) {
        logger.log("error", "unhandled error in handler", {
          request_id: info.requestId,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        });
      }
      if (e instanceof GatewayError && e.kind === "internal") {
        logger.log("error", "internal error", {
          request_id: info.requestId,
          error: String(e.cause ?? e.message),
        });
      }
      const err = toConnectError(e);
      if (info.costUsd === undefined) info.costUsd = 0;
      writeCallHeaders(err.metadata, info);
      // The gateway already spent its retries and fallbacks: SDKs should not multiply them.
      if (
        e instanceof GatewayError &&
        (((e.kind === "upstream" || e.kind === "timeout") && info.attempts > 0) ||
          e.kind === "budget")
      ) {
        err.metadata.set("x-should-retry", "false");
      }
      return err;
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        writeCallHeaders(res.header, info);
        return res;
      }
      // A stream: its headers go out with the first event, once the router has chosen; its
      // cost (the sum of its images') is known at its end, in the trailer.
      return {
        ...res,
        message: watchStream(res.message, {
          first: () => writeCallHeaders(res.header, info),
          error: fail,
          end: () => {
            res.trailer.set(HEADER.cost, formatUsd(info.costUsd ?? 0));
          },
        }),
      };
    } catch (e) {
      throw fail(e);
    }
  };
}
