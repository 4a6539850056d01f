/** Vertex AI: environment, credentials and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { probeVertexCredentials, vertexAdapter } from "./adapter.ts";

export const vertexAi: ProviderDescriptor<"vertex_ai"> = {
  name: "vertex_ai",
  env: {
    vertex_credentials: ["GOOGLE_APPLICATION_CREDENTIALS"],
    vertex_project: ["VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT"],
    vertex_location: ["VERTEXAI_LOCATION", "GOOGLE_CLOUD_LOCATION"],
    api_base: ["VERTEXAI_API_BASE"],
  },
  // Without a key, Application Default Credentials; without a project, the credentials' own.
  requires: [[]],
  imageHosts: [],
  telemetryName: "gcp.vertex_ai",
  adapter: vertexAdapter,
  probeCredentials: probeVertexCredentials,
};
