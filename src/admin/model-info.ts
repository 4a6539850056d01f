/**
 * `/model/info`: every configured deployment as LiteLLM shows it (`model_name`,
 * `litellm_params`, `model_info`), with its price and whether it is in rotation, and
 * without a single secret: credential params are dropped by name, passwords are cut out of
 * URLs, and any other value that holds one of the config's secrets is dropped too.
 */
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import type { Deployment } from "../config/deployment.ts";
import {
  DeploymentInfoSchema,
  DeploymentModelInfoSchema,
  type GetModelInfoResponse,
  GetModelInfoResponseSchema,
} from "../gen/imagegate/admin/v1/admin_pb.js";
import type { PriceList } from "../pricing/pricing.ts";
import { SECRET_PARAMS } from "../providers/env.ts";

export interface ModelInfoSource {
  deployments(): readonly Deployment[];
  prices: PriceList;
  /** Whether a deployment is cooling down (out of rotation) now. */
  isCooling(id: string): boolean;
  /** Every secret the config holds (config-secrets.ts). */
  secrets: readonly string[];
}

/** Params that are credentials, whatever they hold. */
const DROPPED = new Set<string>([...SECRET_PARAMS, "vertex_credentials"]);
/** Param names that look like credentials (a provider's future `*_token`, say). */
const SECRET_NAME = /(key|secret|token|password|credential)/i;
/** Names of a credential's harmless parts (an AWS key id is not a secret; a region is not). */
const HARMLESS = new Set(["aws_access_key_id"]);

export function modelInfo(source: ModelInfoSource): GetModelInfoResponse {
  return create(GetModelInfoResponseSchema, {
    data: source.deployments().map((d) => {
      const price = source.prices.lookup(d.provider, d.baseModel ?? d.model);
      const standard = price?.per_image === undefined ? undefined : firstPrice(price.per_image);
      return create(DeploymentInfoSchema, {
        modelName: d.group,
        litellmParams: publicParams(d.params as Record<string, unknown>, source.secrets),
        modelInfo: create(DeploymentModelInfoSchema, {
          id: d.id,
          provider: d.provider,
          model: d.model,
          outputCostPerImage: d.costPerImage ?? standard,
          inRotation: !source.isCooling(d.id),
          price: price === undefined ? undefined : (jsonOf(price) as JsonObject),
          baseModel: d.baseModel,
        }),
      });
    }),
  });
}

/** The first listed quality's first listed size: the default a request without either gets. */
function firstPrice(perImage: Record<string, Record<string, number>>): number | undefined {
  const first = Object.values(perImage)[0];
  return first === undefined ? undefined : Object.values(first)[0];
}

/** The params a reader may see. */
export function publicParams(
  params: Record<string, unknown>,
  secrets: readonly string[],
): JsonObject {
  const out: JsonObject = {};
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (DROPPED.has(name) || (SECRET_NAME.test(name) && !HARMLESS.has(name))) continue;
    const json = jsonOf(typeof value === "string" ? withoutUserinfo(value) : value);
    if (holdsSecret(json, secrets)) continue;
    out[name] = json;
  }
  return out;
}

/** A URL's `user:password@` removed (the rest of the text as it was). */
function withoutUserinfo(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text;
  try {
    const url = new URL(text);
    if (url.username === "" && url.password === "") return text;
    url.username = "";
    url.password = "";
    return url.toString();
  } catch {
    return text;
  }
}

function holdsSecret(value: JsonValue, secrets: readonly string[]): boolean {
  const text = JSON.stringify(value);
  return secrets.some(
    (s) => s.length >= 4 && (text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1))),
  );
}

function jsonOf(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Date ? v.toISOString() : v)));
}
