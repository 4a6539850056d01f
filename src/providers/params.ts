/**
 * What a deployment tells its provider: endpoint, API version and credentials (the provider
 * keys of a deployment's `params`; config/schema.ts adds the routing keys). The providers'
 * vocabulary, so it lives with them and the config imports it.
 */
import { z } from "zod";

export const ProviderParamsSchema = z.strictObject({
  api_key: z.string().min(1).optional(),
  api_base: z.url().optional(),
  api_version: z.string().min(1).optional(),
  organization: z.string().optional(),
  // Azure Entra ID (client credentials)
  tenant_id: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  azure_ad_token: z.string().optional(),
  // Entra ID authority (sovereign clouds, emulators); default https://login.microsoftonline.com
  azure_authority_host: z.url().optional(),
  // Vertex AI
  vertex_project: z.string().optional(),
  vertex_location: z.string().optional(),
  vertex_credentials: z.string().optional(),
  // AWS Bedrock
  aws_region_name: z.string().optional(),
  aws_access_key_id: z.string().optional(),
  aws_secret_access_key: z.string().optional(),
  aws_session_token: z.string().optional(),
  // Without a static pair: the profile of the shared files the default chain reads, and a
  // role (ARN) assumed through STS from whichever base credentials apply.
  aws_profile_name: z.string().min(1).optional(),
  aws_role_name: z.string().min(1).optional(),
  aws_session_name: z.string().min(1).optional(),
  // LiteLLM's: an OIDC token (e.g. os.environ/…) exchanged for aws_role_name's credentials
  // through STS AssumeRoleWithWebIdentity, and the STS endpoint every role is assumed at.
  aws_web_identity_token: z.string().min(1).optional(),
  aws_sts_endpoint: z.url().optional(),
});
export type ProviderParams = z.infer<typeof ProviderParamsSchema>;
export type ParamKey = keyof ProviderParams;

/** Params that hold secrets. */
export const SECRET_PARAMS = [
  "api_key",
  "client_secret",
  "azure_ad_token",
  "aws_secret_access_key",
  "aws_session_token",
  "aws_web_identity_token",
] as const satisfies readonly ParamKey[];
