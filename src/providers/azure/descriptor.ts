/** Azure OpenAI: environment, credentials, image hosts and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { azureAdapter } from "./adapter.ts";

export const azure: ProviderDescriptor<"azure"> = {
  name: "azure",
  env: {
    api_key: ["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
    api_base: ["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
    api_version: ["AZURE_API_VERSION", "OPENAI_API_VERSION"],
    azure_authority_host: ["AZURE_AUTHORITY_HOST"],
  },
  requires: [
    ["api_base", "api_key"],
    ["api_base", "azure_ad_token"],
    ["api_base", "tenant_id", "client_id", "client_secret"],
  ],
  // Azure OpenAI DALL·E URLs, by region of the resource (seen in Azure's own samples).
  imageHosts: [
    "dalleprodsec.blob.core.windows.net",
    "dalleproduse.blob.core.windows.net",
    "dalleprodaue.blob.core.windows.net",
  ],
  telemetryName: "azure.ai.openai",
  adapter: azureAdapter,
};
