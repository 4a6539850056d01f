/** AWS Bedrock: environment, credentials and telemetry name (see ../descriptor.ts). */
import type { ProviderDescriptor } from "../descriptor.ts";
import { bedrockAdapter } from "./adapter.ts";
import { probeBedrockCredentials } from "./credentials.ts";

export const bedrock: ProviderDescriptor<"bedrock"> = {
  name: "bedrock",
  env: {
    aws_access_key_id: ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key: ["AWS_SECRET_ACCESS_KEY"],
    aws_session_token: ["AWS_SESSION_TOKEN"],
    aws_region_name: ["AWS_REGION", "AWS_DEFAULT_REGION"],
    api_base: ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"],
  },
  // A key pair and its session token are one credential (contract: never combined with the
  // environment's session token).
  units: [
    {
      keys: ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"],
      needs: ["aws_access_key_id", "aws_secret_access_key"],
      instead: ["aws_profile_name", "aws_web_identity_token"],
    },
    // LiteLLM's web identity token is exchanged for a role's credentials: it needs the role.
    { keys: ["aws_web_identity_token"], needs: ["aws_web_identity_token", "aws_role_name"] },
  ],
  // Without a static pair, the AWS default chain (and aws_role_name) supplies credentials.
  requires: [["aws_region_name"]],
  imageHosts: [],
  telemetryName: "aws.bedrock",
  adapter: bedrockAdapter,
  probeCredentials: probeBedrockCredentials,
};
