/**
 * Every provider this build serves: the one list. Adding a provider is a folder beside this
 * file with its descriptor, and one line here (the record's type asks for every name in
 * catalog/providers.ts).
 */
import type { Provider } from "../catalog/providers.ts";
import { azure } from "./azure/descriptor.ts";
import { bedrock } from "./bedrock/descriptor.ts";
import type { ProviderDescriptor } from "./descriptor.ts";
import { gemini } from "./gemini/descriptor.ts";
import { openai } from "./openai/descriptor.ts";
import { recraft } from "./recraft/descriptor.ts";
import type { ProviderAdapter } from "./types.ts";
import { vertexAi } from "./vertex_ai/descriptor.ts";

export const DESCRIPTORS: { readonly [P in Provider]: ProviderDescriptor<P> } = {
  openai,
  azure,
  gemini,
  vertex_ai: vertexAi,
  bedrock,
  recraft,
};

export const ADAPTERS: readonly ProviderAdapter[] = Object.values(DESCRIPTORS).map(
  (d) => d.adapter,
);
