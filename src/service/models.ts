/**
 * ImageService.ListModels and GetModel: OpenAI's `GET /v1/models` and `GET /v1/models/{id}`,
 * answering with what the caller's key may use, by the rule CreateImage applies: the
 * config's public names (all of them for an open gateway, the master key or a key without a
 * model list; those a key lists otherwise) and the direct `provider/model` names a key
 * lists. A name the key may not use is OpenAI's 404 `model_not_found`, like an unknown
 * one: a key learns nothing about models beyond its own.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import type { KeyIdentity } from "../auth/keys.ts";
import type { GatewayConfig } from "../config/load.ts";
import { GatewayError } from "../errors/errors.ts";
import {
  type ImageService,
  type Model,
  ModelSchema,
  ListModelsResponseSchema,
} from "../gen/imagegate/v1/images_pb.js";
import type { ModelGroup, ModelResolver } from "../router/resolve.ts";
import { kCallInfo } from "../call/call-info.ts";

/** `owned_by` for a public name whose deployments span providers. */
const MIXED_OWNER = "imagegate";

export function createModelService(
  config: GatewayConfig,
  resolver: ModelResolver,
): Partial<ServiceImpl<typeof ImageService>> {
  // OpenAI's `created` is when the model was made; here, when the gateway loaded it.
  const created = Math.floor(Date.now() / 1000);
  const toModel = (group: ModelGroup, id: string): Model => {
    const providers = new Set(group.deployments.map((d) => d.provider));
    return create(ModelSchema, {
      id,
      object: "model",
      created,
      ownedBy: providers.size === 1 ? [...providers][0]! : MIXED_OWNER,
    });
  };
  return {
    listModels(_request, ctx) {
      const identity = callerOf(ctx);
      // The config's names in its order, its aliases not hidden, then the direct names a
      // key lists, in its order.
      const aliases = [...config.aliases].filter(([, a]) => !a.hidden).map(([name]) => name);
      const names = new Set([...config.groups.keys(), ...aliases, ...(identity?.models ?? [])]);
      const data: Model[] = [];
      for (const name of names) {
        const group = usable(resolver, identity, name);
        if (group === undefined) continue;
        if (config.groups.has(name) || config.aliases.has(name) || identity?.models !== undefined)
          data.push(toModel(group, name));
      }
      return create(ListModelsResponseSchema, { object: "list", data });
    },
    getModel(request, ctx) {
      const group = usable(resolver, callerOf(ctx), request.id);
      if (group === undefined) {
        throw new GatewayError(
          "model_not_found",
          `The model '${request.id}' does not exist or you do not have access to it.`,
          { param: "model" },
        );
      }
      return toModel(group, request.id);
    },
  };
}

/** The caller's key (undefined on an open gateway); the call costs nothing. */
function callerOf(ctx: HandlerContext): KeyIdentity | undefined {
  const info = ctx.values.get(kCallInfo);
  if (info) info.costUsd = 0;
  return ctx.values.get(kKey);
}

/**
 * The model group a request naming `name` would use, when the key may use it: the name
 * resolves (credentials included) to itself or is a configured alias of what it resolves to,
 * and the key allows it (the alias, or what it stands for). A bare OpenAI name such as
 * `dall-e-3` resolves to another name, so it is not listed under its own.
 */
function usable(
  resolver: ModelResolver,
  identity: KeyIdentity | undefined,
  name: string,
): ModelGroup | undefined {
  try {
    const group = resolver.resolve(name);
    if (group.name !== name && group.alias !== name) return undefined;
    if (identity?.models === undefined || identity.models.has(name)) return group;
    return group.alias !== undefined && identity.models.has(group.name) ? group : undefined;
  } catch (e) {
    if (e instanceof GatewayError) return undefined;
    throw e;
  }
}
