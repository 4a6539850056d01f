/**
 * The metric instruments, by the contract's names. Prometheus names are what OTel's
 * exporter derives from these.
 */
import {
  type Counter,
  diag,
  type Histogram,
  type Meter,
  type UpDownCounter,
} from "@opentelemetry/api";
import {
  METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
  METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
  METRIC_RPC_SERVER_CALL_DURATION,
} from "./semconv.ts";

/** gen_ai.client.operation.duration buckets: doubling from 0.01 s to 81.92 s (GenAI semconv). */
const OPERATION_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.01 * 2 ** i);
/** gen_ai.client.token.usage buckets: ×4 from 1 to 67,108,864 (GenAI semconv). */
const TOKEN_BUCKETS = Array.from({ length: 14 }, (_, i) => 4 ** i);
/** rpc.server.call.duration buckets, in seconds. */
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface Instruments {
  cost: Counter;
  unpriced: Counter;
  images: Counter;
  upstreamAttempts: Counter;
  inflight: UpDownCounter;
  operationDuration: Histogram;
  tokenUsage: Histogram;
  rpcDuration: Histogram;
  streamFirstEvent: Histogram;
}

export function createInstruments(meter: Meter): Instruments {
  return {
    cost: meter.createCounter("imagegate.cost", {
      unit: "USD",
      description: "Cost of answered requests, in US dollars",
    }),
    unpriced: meter.createCounter("imagegate.requests.unpriced", {
      unit: "{request}",
      description:
        "Answered requests whose model has no known price (their cost is unknown, not zero)",
    }),
    images: meter.createCounter("imagegate.images", {
      unit: "{image}",
      description: "Images delivered to clients",
    }),
    upstreamAttempts: meter.createCounter("imagegate.upstream.attempts", {
      unit: "{attempt}",
      description: "Upstream calls, by outcome",
    }),
    inflight: meter.createUpDownCounter("imagegate.requests.in_flight", {
      unit: "{request}",
      description: "Requests being served",
    }),
    operationDuration: meter.createHistogram(METRIC_GEN_AI_CLIENT_OPERATION_DURATION, {
      unit: "s",
      description: "Duration of each upstream image generation call",
      advice: { explicitBucketBoundaries: OPERATION_BUCKETS },
    }),
    tokenUsage: meter.createHistogram(METRIC_GEN_AI_CLIENT_TOKEN_USAGE, {
      unit: "{token}",
      description: "Tokens used per upstream call, by gen_ai.token.type",
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    }),
    rpcDuration: meter.createHistogram(METRIC_RPC_SERVER_CALL_DURATION, {
      unit: "s",
      description: "Duration of each request, as the client sees it",
      advice: { explicitBucketBoundaries: RPC_BUCKETS },
    }),
    streamFirstEvent: meter.createHistogram("imagegate.stream.first_event.duration", {
      unit: "s",
      description:
        "Time from a streamed request's start to its first event (a partial image, or the first completed image)",
      advice: { explicitBucketBoundaries: RPC_BUCKETS },
    }),
  };
}

/** imagegate's own attribute names on its metrics, spans and logs (the standard ones: semconv.ts). */
export const ATTR = {
  model: "imagegate.model",
  deployment: "imagegate.deployment",
  provider: "imagegate.provider",
  status: "imagegate.status",
  key: "imagegate.key",
  outcome: "imagegate.outcome",
  protocol: "imagegate.protocol",
  requestId: "imagegate.request_id",
} as const;

/**
 * Runs `record` once the current turn of the event loop is over (after the answer is
 * written), where a throw would reach no caller: it is reported the way OpenTelemetry
 * reports its own failures.
 */
export function afterThisTurn(record: () => void): void {
  setImmediate(() => {
    try {
      record();
    } catch (e) {
      diag.error("imagegate: recording telemetry failed", e);
    }
  });
}
