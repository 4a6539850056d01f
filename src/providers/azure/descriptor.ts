/** Azure OpenAI: environment, credentials, image hosts and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { azureAdapter } from "./adapter.ts";
import { probeAzureCredentials } from "./identity.ts";

export const azure: ProviderDescriptor<"azure"> = {
  name: "azure",
  env: {
    api_key: ["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
    api_base: ["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
    api_version: ["AZURE_API_VERSION", "OPENAI_API_VERSION"],
    azure_authority_host: ["AZURE_AUTHORITY_HOST"],
  },
  // Without a key, token or client secret: Entra ID through @azure/identity (identity.ts).
  requires: [["api_base"]],
  // Azure OpenAI DALL·E URLs, by region of the resource (seen in Azure's own samples).
  imageHosts: [
    "dalleprodsec.blob.core.windows.net",
    "dalleproduse.blob.core.windows.net",
    "dalleprodaue.blob.core.windows.net",
  ],
  telemetryName: "azure.ai.openai",
  adapter: azureAdapter,
  probeCredentials: probeAzureCredentials,
};
