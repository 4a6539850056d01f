/**
 * The request's SERVER span (RPC semantic conventions, whichever protocol carried it, with
 * the caller's W3C trace context), its metrics, and its one log record. Runs inside the
 * call-info interceptor, so it sees what the service learned about the call.
 */
import { Code, type ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, ROOT_CONTEXT, SeverityNumber, SpanKind, SpanStatusCode, type TextMapGetter, trace } from "@opentelemetry/api";

import { connectToOpenAI, toConnectError } from "../errors/render.ts";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { kCallInfo } from "../server/call-info.ts";
import { ATTR } from "./instruments.ts";
import type { Telemetry } from "./telemetry.ts";

const headerGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};

/** Codes that mean the server failed (RPC semconv); the rest are the caller's doing. */
const SERVER_FAULTS = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

function upperSnake(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function telemetryInterceptor(t: Telemetry): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    const started = performance.now();
    const info = req.contextValues.get(kCallInfo);
    const method = `${req.service.typeName}/${req.method.name}`;
    const grpc = req.header.get("content-type")?.startsWith("application/grpc") ?? false;
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = t.tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system.name": grpc ? "grpc" : "connectrpc",
          "rpc.method": method,
          // Deprecated names, still read by many backends.
          "rpc.system": grpc ? "grpc" : "connect_rpc",
          "rpc.service": req.service.typeName,
          [ATTR.protocol]: info?.protocol ?? "connect",
          [ATTR.requestId]: info?.requestId ?? "",
        },
      },
      parent,
    );
    t.instruments.inflight.add(1);
    let failure: ConnectError | undefined;
    try {
      return await context.with(trace.setSpan(parent, span), () => next(req));
    } catch (e) {
      failure = toConnectError(e);
      throw e;
    } finally {
      t.instruments.inflight.add(-1);
      const seconds = (performance.now() - started) / 1000;
      const code = failure?.code;
      const status = failure ? connectToOpenAI(failure).status : 200;
      const statusCode = code === undefined ? "OK" : upperSnake(code);
      span.setAttribute("rpc.status_code", statusCode);
      span.setAttribute(grpc ? "rpc.grpc.status_code" : "rpc.connect_rpc.error_code", grpc ? (code ?? 0) : (failure ? statusCode.toLowerCase() : "ok"));
      if (failure) {
        span.setAttribute("error.type", statusCode);
        if (SERVER_FAULTS.has(failure.code)) span.setStatus({ code: SpanStatusCode.ERROR, message: failure.rawMessage });
      }
      // Attributes that are known: an unset one is left out rather than sent empty.
      const common = Object.fromEntries(
        Object.entries({
          [ATTR.model]: info?.model,
          [ATTR.deployment]: info?.deployment,
          [ATTR.provider]: info?.provider,
          [ATTR.status]: String(status),
          [ATTR.key]: info?.keyName,
        }).filter((e): e is [string, string] => e[1] !== undefined),
      );
      span.setAttributes(common);
      for (const event of info?.events ?? []) span.addEvent(event.name, event.attributes, event.time);

      t.instruments.rpcDuration.record(seconds, {
        "rpc.system.name": grpc ? "grpc" : "connectrpc",
        "rpc.method": method,
        "rpc.status_code": statusCode,
        ...common,
      });
      if (!failure && info) {
        if (info.costUsd !== undefined) t.instruments.cost.add(info.costUsd, common);
        else if (info.unpriced) t.instruments.unpriced.add(1, common);
        if (info.images !== undefined) t.instruments.images.add(info.images, common);
      }
      const spanContext = trace.setSpan(parent, span);
      span.end();
      t.logger.emit({
        severityNumber: status >= 500 ? SeverityNumber.ERROR : status === 429 ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: status >= 500 ? "ERROR" : status === 429 ? "WARN" : "INFO",
        body: "request",
        context: spanContext,
        attributes: {
          [ATTR.requestId]: info?.requestId ?? "",
          [ATTR.protocol]: info?.protocol ?? "connect",
          "rpc.method": method,
          ...common,
          "imagegate.attempts": info?.attempts ?? 0,
          "imagegate.duration_ms": Math.round(seconds * 1000),
          ...(info?.costUsd !== undefined ? { "imagegate.cost_usd": info.costUsd } : {}),
          ...(info?.unpriced ? { "imagegate.unpriced": true } : {}),
          ...(info?.images !== undefined ? { "imagegate.images": info.images } : {}),
          ...(info?.size !== undefined ? { "imagegate.size": info.size } : {}),
          ...(info?.quality !== undefined ? { "imagegate.quality": info.quality } : {}),
          ...(failure ? { "imagegate.error": failure.rawMessage, "error.type": statusCode } : {}),
        },
      });
    }
  };
}
