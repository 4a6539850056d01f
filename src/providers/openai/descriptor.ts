/** OpenAI: environment, credentials, image hosts and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { openaiAdapter } from "./adapter.ts";

export const openai: ProviderDescriptor<"openai"> = {
  name: "openai",
  env: { api_key: ["OPENAI_API_KEY"], api_base: ["OPENAI_BASE_URL"] },
  requires: [["api_key"]],
  // DALL·E URLs: Azure blob storage signed URLs, expiring after 60 minutes.
  imageHosts: ["oaidalleapiprodscus.blob.core.windows.net"],
  telemetryName: "openai",
  adapter: openaiAdapter,
};
