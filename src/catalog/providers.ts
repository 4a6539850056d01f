/**
 * The providers this build knows, by the name a direct model name starts with (`bedrock/…`).
 * Each name is the key of a catalog file (`models/<name>.yaml`), a provider folder
 * (`src/providers/<name>/`) and a descriptor in `src/providers/index.ts`, whose record the
 * compiler keeps complete. Here, below both, so that the catalog and the config can check a
 * name without importing the adapters.
 */
export const PROVIDERS = ["openai", "azure", "gemini", "vertex_ai", "bedrock", "recraft"] as const;
export type Provider = (typeof PROVIDERS)[number];

export function isProvider(name: string): name is Provider {
  return (PROVIDERS as readonly string[]).includes(name);
}
