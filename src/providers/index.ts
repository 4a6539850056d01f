/** Every provider adapter this build serves. Adding a provider adds one line here. */
import { openaiAdapter } from "./openai.ts";
import type { ProviderAdapter } from "./types.ts";

export const ADAPTERS: readonly ProviderAdapter[] = [openaiAdapter];
