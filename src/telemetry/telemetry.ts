/**
 * OpenTelemetry for the gateway: one tracer, meter and logger provider per gateway, with
 * the Prometheus exporter behind `/metrics` and OTLP/HTTP export when the standard
 * `OTEL_EXPORTER_OTLP_*` variables are set. Tests pass in-memory exporters instead.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  context,
  type Logger as OtelLogger,
  type Meter,
  propagation,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchLogRecordProcessor,
  type LogRecordExporter,
  LoggerProvider,
  type LogRecordProcessor,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import {
  type IMetricReader,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { Env } from "../config/env.ts";
import { createInstruments, type Instruments } from "./instruments.ts";
import { JsonLinesLogExporter, PrettyLogExporter } from "./log-exporters.ts";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "./semconv.ts";

export interface TelemetryOptions {
  /** Reads OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME. */
  env: Env;
  /** Request logs without a collector: JSON lines (default), readable lines, or none. */
  logFormat?: "json" | "pretty" | "none";
  /** Record prompts on spans and logs (off by default: prompts may be personal data). */
  capturePrompts?: boolean;
  /** Tests: where spans, metrics and log records go, in addition to the defaults. */
  spanExporter?: SpanExporter;
  metricReaders?: IMetricReader[];
  logExporter?: LogRecordExporter;
}

export interface Telemetry {
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly logger: OtelLogger;
  readonly instruments: Instruments;
  readonly capturePrompts: boolean;
  /** Whether spans are recorded (some exporter takes them); without, no span is started. */
  readonly tracing: boolean;
  /** Serves Prometheus text (`GET /metrics`). */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

let contextReady = false;

/** Spans follow the request through awaits: AsyncLocalStorage carries the active context. */
function ensureContext(): void {
  if (contextReady) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  contextReady = true;
}

/**
 * The OTLP/HTTP URL for a signal, per the OTel spec's variables: the signal's own endpoint
 * as given, else the base endpoint plus `/v1/{signal}`; undefined when neither is set or
 * `OTEL_{SIGNAL}_EXPORTER=none`. (Headers, timeouts etc. the exporters read themselves.)
 */
export function otlpUrl(env: Env, signal: "TRACES" | "METRICS" | "LOGS"): string | undefined {
  if (env[`OTEL_${signal}_EXPORTER`] === "none") return undefined;
  const own = env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`];
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, "")}/v1/${signal.toLowerCase()}` : undefined;
}

/**
 * The OTLP exporters are imported only when a variable asks for them: with their protobuf
 * and transport code they are a tenth of the gateway's heap, and every full collection
 * walks the heap (bench/PROFILE.md).
 */
export async function createTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  ensureContext();
  const { env } = options;
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? "imagegate",
    [ATTR_SERVICE_VERSION]: "0.1.0",
  });

  const spanProcessors: SpanProcessor[] = [];
  if (options.spanExporter)
    spanProcessors.push(new SimpleSpanProcessor({ exporter: options.spanExporter }));
  const tracesUrl = otlpUrl(env, "TRACES");
  if (tracesUrl) {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    spanProcessors.push(
      new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl }) }),
    );
  }
  // Without an exporter spans are not recorded (and `tracing` is false: no span is even
  // started, except to carry a caller's trace context to the request's log record).
  const tracerProvider = new TracerProvider({
    resource,
    spanProcessors,
    ...(spanProcessors.length === 0 ? { sampler: new AlwaysOffSampler() } : {}),
  });

  const prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const readers: IMetricReader[] = [prometheus, ...(options.metricReaders ?? [])];
  const metricsUrl = otlpUrl(env, "METRICS");
  if (metricsUrl) {
    const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-http");
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL) || 15_000;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: metricsUrl }),
        exportIntervalMillis: interval,
      }),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });

  const logProcessors: LogRecordProcessor[] = [];
  if (options.logExporter)
    logProcessors.push(new SimpleLogRecordProcessor({ exporter: options.logExporter }));
  const logsUrl = otlpUrl(env, "LOGS");
  if (logsUrl) {
    const { OTLPLogExporter } = await import("@opentelemetry/exporter-logs-otlp-http");
    logProcessors.push(
      new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: logsUrl }) }),
    );
  }
  const format = options.logFormat ?? "json";
  // JSON lines are batched (one write per batch, off the request path); readable lines are for a person, at once.
  if (format === "json")
    logProcessors.push(
      new BatchLogRecordProcessor({
        exporter: new JsonLinesLogExporter(),
        scheduledDelayMillis: 200,
      }),
    );
  if (format === "pretty")
    logProcessors.push(new SimpleLogRecordProcessor({ exporter: new PrettyLogExporter() }));
  const loggerProvider = new LoggerProvider({ resource, processors: logProcessors });

  const meter = meterProvider.getMeter("imagegate");
  return {
    tracer: tracerProvider.getTracer("imagegate"),
    meter,
    logger: loggerProvider.getLogger("imagegate"),
    instruments: createInstruments(meter),
    capturePrompts: options.capturePrompts ?? false,
    tracing: spanProcessors.length > 0,
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    async forceFlush() {
      await Promise.all([
        tracerProvider.forceFlush(),
        meterProvider.forceFlush(),
        loggerProvider.forceFlush(),
      ]);
    },
    async shutdown() {
      await Promise.allSettled([
        tracerProvider.shutdown(),
        meterProvider.shutdown(),
        loggerProvider.shutdown(),
      ]);
    },
  };
}
