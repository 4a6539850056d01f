/**
 * A CLIENT span and metrics around every upstream attempt (GenAI semantic conventions),
 * wrapped around the adapters from outside: adapters know nothing of telemetry.
 */
import { type Attributes, type Span, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { GatewayError } from "../errors/errors.ts";
import { redact } from "../errors/redact.ts";
import { DESCRIPTORS } from "../providers/index.ts";
import type {
  AdapterDeployment,
  GenerationResult,
  ProviderAdapter,
  UpstreamCall,
} from "../providers/types.ts";
import { ATTR, afterThisTurn } from "./instruments.ts";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_TYPE,
  ATTR_GEN_AI_PROMPT,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_CHOICE_COUNT,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT,
  GEN_AI_OUTPUT_TYPE_VALUE_IMAGE,
  GEN_AI_TOKEN_TYPE_VALUE_INPUT,
  GEN_AI_TOKEN_TYPE_VALUE_OUTPUT,
} from "./semconv.ts";
import type { Telemetry } from "./telemetry.ts";

/** A deployment's attribute sets, the same for every attempt: built once, never mutated. */
interface DeploymentAttributes {
  /** On every span and duration. */
  base: Attributes;
  /** A success's duration and token usage. */
  answered: Attributes;
  inputTokens: Attributes;
  outputTokens: Attributes;
  /** imagegate.upstream.attempts, without and with the success outcome. */
  counted: Attributes;
  succeeded: Attributes;
}

function attributesOf(deployment: AdapterDeployment): DeploymentAttributes {
  const base = {
    [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT,
    [ATTR_GEN_AI_OUTPUT_TYPE]: GEN_AI_OUTPUT_TYPE_VALUE_IMAGE,
    [ATTR_GEN_AI_PROVIDER_NAME]: DESCRIPTORS[deployment.provider].telemetryName,
    [ATTR_GEN_AI_REQUEST_MODEL]: deployment.model,
  };
  const answered = { ...base, [ATTR_GEN_AI_RESPONSE_MODEL]: deployment.model };
  const counted = {
    [ATTR.deployment]: deployment.id,
    [ATTR.model]: deployment.group,
    [ATTR.provider]: deployment.provider,
  };
  return {
    base,
    answered,
    inputTokens: { ...answered, [ATTR_GEN_AI_TOKEN_TYPE]: GEN_AI_TOKEN_TYPE_VALUE_INPUT },
    outputTokens: { ...answered, [ATTR_GEN_AI_TOKEN_TYPE]: GEN_AI_TOKEN_TYPE_VALUE_OUTPUT },
    counted,
    succeeded: { ...counted, [ATTR.outcome]: "success" },
  };
}

export function instrumentAdapter(adapter: ProviderAdapter, t: Telemetry): ProviderAdapter {
  const cache = new WeakMap<AdapterDeployment, DeploymentAttributes>();
  const attributesFor = (deployment: AdapterDeployment): DeploymentAttributes => {
    let attrs = cache.get(deployment);
    if (attrs === undefined) {
      attrs = attributesOf(deployment);
      cache.set(deployment, attrs);
    }
    return attrs;
  };

  /** The attempt and its metrics; `span` when spans are recorded. */
  const run = async (
    call: UpstreamCall,
    attrs: DeploymentAttributes,
    span: Span | undefined,
  ): Promise<GenerationResult> => {
    const started = performance.now();
    try {
      const result = await adapter.generate(call);
      span?.setAttributes({
        [ATTR_GEN_AI_RESPONSE_MODEL]: call.deployment.model,
        "imagegate.images": result.images.length,
        "imagegate.filtered": result.filtered,
      });
      const seconds = (performance.now() - started) / 1000;
      const tokens = result.usage && {
        input: result.usage.inputTokens,
        output: result.usage.outputTokens,
      };
      if (tokens)
        span?.setAttributes({
          [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: tokens.input,
          [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: tokens.output,
        });
      // Metrics are recorded once the answer is on its way, as the request's own (interceptor.ts).
      afterThisTurn(() => {
        if (tokens) {
          t.instruments.tokenUsage.record(tokens.input, attrs.inputTokens);
          t.instruments.tokenUsage.record(tokens.output, attrs.outputTokens);
        }
        t.instruments.operationDuration.record(seconds, attrs.answered);
        t.instruments.upstreamAttempts.add(1, attrs.succeeded);
      });
      return result;
    } catch (e) {
      const type = e instanceof GatewayError ? (e.code ?? e.kind) : "canceled";
      if (span) {
        span.setAttribute(ATTR_ERROR_TYPE, type);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: redact(e instanceof Error ? e.message : String(e)),
        });
      }
      const seconds = (performance.now() - started) / 1000;
      afterThisTurn(() => {
        t.instruments.operationDuration.record(seconds, { ...attrs.base, [ATTR_ERROR_TYPE]: type });
        t.instruments.upstreamAttempts.add(1, { ...attrs.counted, [ATTR.outcome]: type });
      });
      throw e;
    } finally {
      span?.end();
    }
  };

  /** A stream's attempt is counted once the upstream answered (or failed to); its span is the request's. */
  const stream = adapter.stream?.bind(adapter);
  const streamed: Pick<ProviderAdapter, "stream"> =
    stream === undefined
      ? {}
      : {
          async stream(call) {
            const attrs = attributesFor(call.deployment);
            try {
              const events = await stream(call);
              afterThisTurn(() => t.instruments.upstreamAttempts.add(1, attrs.succeeded));
              return events;
            } catch (e) {
              const type = e instanceof GatewayError ? (e.code ?? e.kind) : "canceled";
              afterThisTurn(() =>
                t.instruments.upstreamAttempts.add(1, { ...attrs.counted, [ATTR.outcome]: type }),
              );
              throw e;
            }
          },
        };
  return {
    provider: adapter.provider,
    ...streamed,
    generate(call) {
      const { deployment, request } = call;
      const attrs = attributesFor(deployment);
      // Spans only when something records them (see telemetry.ts): metrics either way.
      if (!t.tracing) return run(call, attrs, undefined);
      return t.tracer.startActiveSpan(
        `generate_content ${deployment.model}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...attrs.base,
            [ATTR_GEN_AI_REQUEST_CHOICE_COUNT]: request.n ?? 1,
            [ATTR.deployment]: deployment.id,
            [ATTR.model]: deployment.group,
            ...(t.capturePrompts && request.prompt !== undefined
              ? { [ATTR_GEN_AI_PROMPT]: request.prompt }
              : {}),
          },
        },
        (span) => run(call, attrs, span),
      );
    },
  };
}
