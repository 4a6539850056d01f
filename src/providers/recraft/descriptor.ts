/** Recraft: environment, credentials, image hosts and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { recraftAdapter } from "./adapter.ts";

export const recraft: ProviderDescriptor<"recraft"> = {
  name: "recraft",
  env: { api_key: ["RECRAFT_API_KEY"], api_base: ["RECRAFT_API_BASE"] },
  requires: [["api_key"]],
  // Recraft URLs live about 24 hours.
  imageHosts: ["img.recraft.ai"],
  telemetryName: "recraft",
  adapter: recraftAdapter,
};
