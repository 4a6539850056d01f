/** Every provider adapter this build serves. Adding a provider adds one line here. */
import { bedrockAdapter } from "./bedrock.ts";
import { openaiAdapter } from "./openai.ts";
import { azureAdapter } from "./azure.ts";
import { recraftAdapter } from "./recraft.ts";
import { geminiAdapter } from "./gemini.ts";
import { vertexAdapter } from "./vertex.ts";
import type { ProviderAdapter } from "./types.ts";

export const ADAPTERS: readonly ProviderAdapter[] = [
  openaiAdapter,
  bedrockAdapter,
  azureAdapter,
  recraftAdapter,
  geminiAdapter,
  vertexAdapter,
];
