/**
 * The six provider emulators' starters, for `npm run dev`, which runs them all. Tests and the
 * bench import a provider's module (`@imagegate/emulators/bedrock`, …) for its faults and
 * helpers as well.
 */
export { type AzureEmulator, startAzureEmulator } from "./azure.ts";
export { type BedrockEmulator, startBedrockEmulator } from "./bedrock.ts";
export { type GeminiEmulator, startGeminiEmulator } from "./gemini.ts";
export { type OpenAIEmulator, startOpenAIEmulator } from "./openai.ts";
export { type RecraftEmulator, startRecraftEmulator } from "./recraft.ts";
export { startVertexEmulator, type VertexEmulator } from "./vertex.ts";
