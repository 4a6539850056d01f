/**
 * The request's SERVER span (RPC semantic conventions, whichever protocol carried it, with
 * the caller's W3C trace context), its metrics, and its one log record. Runs inside the
 * call-info interceptor, so it sees what the service learned about the call.
 *
 * The span, the in-flight gauge and every value are settled when the call ends; the
 * metrics and the log record are recorded right after, once the answer is on its way
 * (`setImmediate`: the protocol writes it in the same turn of the event loop), so that their
 * cost is not part of the request's latency.
 */
import { Code, type ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type Attributes,
  type Context,
  context,
  type LogRecord,
  propagation,
  ROOT_CONTEXT,
  SeverityNumber,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";

import { connectToOpenAI, toConnectError } from "../errors/render.ts";
import { OPEN_SERVICES } from "../call/open-services.ts";
import { kCallInfo } from "../call/call-info.ts";
import { watchStream } from "../call/stream-hooks.ts";
import { ATTR, afterThisTurn } from "./instruments.ts";
import {
  ATTR_ERROR_TYPE,
  ATTR_RPC_CONNECT_RPC_ERROR_CODE,
  ATTR_RPC_GRPC_STATUS_CODE,
  ATTR_RPC_METHOD,
  ATTR_RPC_SERVICE,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM,
  ATTR_RPC_SYSTEM_NAME,
  RPC_SYSTEM_NAME_VALUE_CONNECTRPC,
  RPC_SYSTEM_NAME_VALUE_GRPC,
  RPC_SYSTEM_VALUE_CONNECT_RPC,
  RPC_SYSTEM_VALUE_GRPC,
} from "./semconv.ts";
import type { Telemetry } from "./telemetry.ts";

const headerGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};

/** Codes that mean the server failed (RPC semconv); the rest are the caller's doing. */
const SERVER_FAULTS = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

function upperSnake(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function telemetryInterceptor(t: Telemetry): Interceptor {
  return (next) => async (req) => {
    if (OPEN_SERVICES.has(req.service.typeName)) return next(req);
    const started = performance.now();
    const info = req.contextValues.get(kCallInfo);
    const method = `${req.service.typeName}/${req.method.name}`;
    const grpc = req.header.get("content-type")?.startsWith("application/grpc") ?? false;
    // A span only when something records it, or when the caller sent a trace context for
    // the log record to carry: an unrecorded span under a fresh trace id serves nobody.
    const traced = t.tracing || hasTraceContext(req.header);
    const parent = traced
      ? propagation.extract(ROOT_CONTEXT, req.header, headerGetter)
      : ROOT_CONTEXT;
    const span = traced
      ? t.tracer.startSpan(
          method,
          {
            kind: SpanKind.SERVER,
            attributes: {
              [ATTR_RPC_SYSTEM_NAME]: grpc
                ? RPC_SYSTEM_NAME_VALUE_GRPC
                : RPC_SYSTEM_NAME_VALUE_CONNECTRPC,
              [ATTR_RPC_METHOD]: method,
              // Deprecated names, still read by many backends.
              [ATTR_RPC_SYSTEM]: grpc ? RPC_SYSTEM_VALUE_GRPC : RPC_SYSTEM_VALUE_CONNECT_RPC,
              [ATTR_RPC_SERVICE]: req.service.typeName,
              [ATTR.protocol]: info?.protocol ?? "connect",
              [ATTR.requestId]: info?.requestId ?? "",
            },
          },
          parent,
        )
      : undefined;
    const spanContext = span ? trace.setSpan(parent, span) : ROOT_CONTEXT;
    t.instruments.inflight.add(1);
    let streaming = false;
    let failure: ConnectError | undefined;
    try {
      const res = await (span ? context.with(spanContext, next, undefined, req) : next(req));
      if (!res.stream) return res;
      // A stream: the call (span, in-flight, duration, log record) lasts until its last event.
      streaming = true;
      const source = span ? boundTo(res.message, spanContext) : res.message;
      return {
        ...res,
        message: watchStream(source, {
          first: () => {
            const attributes: Attributes = {};
            if (info?.model !== undefined) attributes[ATTR.model] = info.model;
            if (info?.provider !== undefined) attributes[ATTR.provider] = info.provider;
            t.instruments.streamFirstEvent.record((performance.now() - started) / 1000, attributes);
          },
          end: (e) => finish(e === undefined ? undefined : toConnectError(e)),
        }),
      };
    } catch (e) {
      failure = toConnectError(e);
      throw e;
    } finally {
      if (!streaming) finish(failure);
    }

    function finish(failure: ConnectError | undefined): void {
      t.instruments.inflight.add(-1);
      const seconds = (performance.now() - started) / 1000;
      const code = failure?.code;
      const status = failure ? connectToOpenAI(failure).status : 200;
      const statusCode = code === undefined ? "OK" : upperSnake(code);
      // Attributes that are known: an unset one is left out rather than sent empty.
      const common: Attributes = {};
      if (info?.model !== undefined) common[ATTR.model] = info.model;
      if (info?.deployment !== undefined) common[ATTR.deployment] = info.deployment;
      if (info?.provider !== undefined) common[ATTR.provider] = info.provider;
      common[ATTR.status] = String(status);
      if (info?.keyName !== undefined) common[ATTR.key] = info.keyName;
      if (span) {
        span.setAttribute(ATTR_RPC_STATUS_CODE, statusCode);
        span.setAttribute(
          grpc ? ATTR_RPC_GRPC_STATUS_CODE : ATTR_RPC_CONNECT_RPC_ERROR_CODE,
          grpc ? (code ?? 0) : failure ? statusCode.toLowerCase() : "ok",
        );
        if (failure) {
          span.setAttribute(ATTR_ERROR_TYPE, statusCode);
          if (SERVER_FAULTS.has(failure.code))
            span.setStatus({ code: SpanStatusCode.ERROR, message: failure.rawMessage });
        }
        span.setAttributes(common);
        for (const event of info?.events ?? [])
          span.addEvent(event.name, event.attributes, event.time);
        span.end();
      }
      const rpcAttributes: Attributes = {
        [ATTR_RPC_SYSTEM_NAME]: grpc
          ? RPC_SYSTEM_NAME_VALUE_GRPC
          : RPC_SYSTEM_NAME_VALUE_CONNECTRPC,
        [ATTR_RPC_METHOD]: method,
        [ATTR_RPC_STATUS_CODE]: statusCode,
        ...common,
      };
      const attributes: Attributes = {
        [ATTR.requestId]: info?.requestId ?? "",
        [ATTR.protocol]: info?.protocol ?? "connect",
        [ATTR_RPC_METHOD]: method,
        ...common,
        "imagegate.attempts": info?.attempts ?? 0,
        "imagegate.duration_ms": Math.round(seconds * 1000),
      };
      if (info?.costUsd !== undefined) attributes["imagegate.cost_usd"] = info.costUsd;
      if (info?.unpriced) attributes["imagegate.unpriced"] = true;
      if (info?.images !== undefined) attributes["imagegate.images"] = info.images;
      if (info?.size !== undefined) attributes["imagegate.size"] = info.size;
      if (info?.quality !== undefined) attributes["imagegate.quality"] = info.quality;
      if (failure) {
        attributes["imagegate.error"] = failure.rawMessage;
        attributes[ATTR_ERROR_TYPE] = statusCode;
      }
      const answered = failure === undefined ? info : undefined;
      const record: LogRecord = {
        severityNumber:
          status >= 500
            ? SeverityNumber.ERROR
            : status === 429
              ? SeverityNumber.WARN
              : SeverityNumber.INFO,
        severityText: status >= 500 ? "ERROR" : status === 429 ? "WARN" : "INFO",
        body: "request",
        timestamp: Date.now(),
        context: spanContext,
        attributes,
      };
      // Everything above is fixed now; recording it waits until the answer is on its way
      // (the caller writes it in this same turn of the event loop), off the request's latency.
      afterThisTurn(() => {
        t.instruments.rpcDuration.record(seconds, rpcAttributes);
        if (answered) {
          if (answered.costUsd !== undefined) t.instruments.cost.add(answered.costUsd, common);
          else if (answered.unpriced) t.instruments.unpriced.add(1, common);
          if (answered.images !== undefined) t.instruments.images.add(answered.images, common);
        } else if (info?.costUsd) {
          // A stream that failed or was given up after the upstream billed: still counted.
          t.instruments.cost.add(info.costUsd, common);
        }
        t.logger.emit(record);
      });
    }
  };
}

/** `source`, each of its steps run in `ctx` (so upstream calls made while streaming are the span's children). */
function boundTo<T>(source: AsyncIterable<T>, ctx: Context): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        next: (v?: unknown) => context.with(ctx, () => it.next(v)),
        return: (v?: unknown) =>
          context.with(
            ctx,
            () => it.return?.(v) ?? Promise.resolve({ done: true as const, value: v as T }),
          ),
      };
    },
  };
}

/** Whether the call carries a trace context the propagator reads (W3C: `traceparent`, `tracestate`). */
function hasTraceContext(header: Headers): boolean {
  for (const field of propagation.fields()) if (header.has(field)) return true;
  return false;
}
