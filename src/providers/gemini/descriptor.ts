/** Google AI Studio (Gemini API): environment, credentials and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { geminiAdapter } from "./adapter.ts";

export const gemini: ProviderDescriptor<"gemini"> = {
  name: "gemini",
  env: { api_key: ["GEMINI_API_KEY", "GOOGLE_API_KEY"], api_base: ["GEMINI_API_BASE"] },
  requires: [["api_key"]],
  imageHosts: [],
  telemetryName: "gcp.gemini",
  adapter: geminiAdapter,
};
