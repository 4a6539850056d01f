/**
 * The hosts each provider serves its image URLs from: the only places the gateway will
 * download a provider's URL from (over HTTPS, port 443), besides what
 * `general_settings.allowed_image_hosts` adds. Data: a provider that starts using another
 * host is one line here. Providers that answer only with bytes have none.
 */
import type { Provider } from "./env.ts";

export const PROVIDER_IMAGE_HOSTS: Readonly<Record<Provider, readonly string[]>> = {
  // DALL·E URLs: Azure blob storage signed URLs, expiring after 60 minutes.
  openai: ["oaidalleapiprodscus.blob.core.windows.net"],
  // Azure OpenAI DALL·E URLs, by region of the resource (seen in Azure's own samples).
  azure: [
    "dalleprodsec.blob.core.windows.net",
    "dalleproduse.blob.core.windows.net",
    "dalleprodaue.blob.core.windows.net",
  ],
  gemini: [],
  vertex_ai: [],
  bedrock: [],
  // Recraft URLs live about 24 hours.
  recraft: ["img.recraft.ai"],
};
