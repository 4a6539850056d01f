/**
 * A CLIENT span and metrics around every upstream attempt (GenAI semantic conventions),
 * wrapped around the adapters from outside: adapters know nothing of telemetry.
 */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { GatewayError } from "../errors/errors.ts";
import { redact } from "../errors/redact.ts";
import type { ProviderAdapter } from "../providers/types.ts";
import { ATTR, GEN_AI_PROVIDER } from "./instruments.ts";
import type { Telemetry } from "./telemetry.ts";

export function instrumentAdapter(adapter: ProviderAdapter, t: Telemetry): ProviderAdapter {
  return {
    provider: adapter.provider,
    async generate(call) {
      const { deployment, request } = call;
      const provider = GEN_AI_PROVIDER[deployment.provider] ?? "gcp.gen_ai";
      const base = {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.output.type": "image",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": deployment.model,
      };
      const started = performance.now();
      return t.tracer.startActiveSpan(
        `generate_content ${deployment.model}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...base,
            "gen_ai.request.choice.count": request.n ?? 1,
            [ATTR.deployment]: deployment.id,
            [ATTR.model]: deployment.group,
            ...(t.capturePrompts && request.prompt !== undefined ? { "gen_ai.prompt": request.prompt } : {}),
          },
        },
        async (span) => {
          const counted = { [ATTR.deployment]: deployment.id, [ATTR.model]: deployment.group, [ATTR.provider]: deployment.provider };
          try {
            const result = await adapter.generate(call);
            span.setAttributes({
              "gen_ai.response.model": deployment.model,
              "imagegate.images": result.images.length,
              "imagegate.filtered": result.filtered,
            });
            if (result.usage) {
              span.setAttributes({
                "gen_ai.usage.input_tokens": result.usage.inputTokens,
                "gen_ai.usage.output_tokens": result.usage.outputTokens,
              });
              const tokenAttrs = { ...base, "gen_ai.response.model": deployment.model };
              t.instruments.tokenUsage.record(result.usage.inputTokens, { ...tokenAttrs, "gen_ai.token.type": "input" });
              t.instruments.tokenUsage.record(result.usage.outputTokens, { ...tokenAttrs, "gen_ai.token.type": "output" });
            }
            t.instruments.operationDuration.record((performance.now() - started) / 1000, { ...base, "gen_ai.response.model": deployment.model });
            t.instruments.upstreamAttempts.add(1, { ...counted, [ATTR.outcome]: "success" });
            return result;
          } catch (e) {
            const type = e instanceof GatewayError ? (e.code ?? e.kind) : "canceled";
            span.setAttribute("error.type", type);
            span.setStatus({ code: SpanStatusCode.ERROR, message: redact(e instanceof Error ? e.message : String(e)) });
            t.instruments.operationDuration.record((performance.now() - started) / 1000, { ...base, "error.type": type });
            t.instruments.upstreamAttempts.add(1, { ...counted, [ATTR.outcome]: type });
            throw e;
          } finally {
            span.end();
          }
        },
      );
    },
  };
}
