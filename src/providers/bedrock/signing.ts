/**
 * The invoke URL, the deployment's AWS credentials and the SigV4 signature (service
 * `bedrock`) of one call.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { ProviderParams } from "../params.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { PROVIDER } from "./errors.ts";

/** SigV4 signs Bedrock Runtime as `bedrock`, not `bedrock-runtime`. */
export const BEDROCK_SIGNING_SERVICE = "bedrock";

/** `api_base` (env already applied), else the region's public endpoint. */
export function bedrockBaseUrl(params: ProviderParams): string {
  const base =
    params.api_base ??
    `https://bedrock-runtime.${params.aws_region_name ?? "us-east-1"}.amazonaws.com`;
  return base.replace(/\/+$/, "");
}

/**
 * The invoke URL. The model id is one path segment, percent-encoded as AWS's SDK does
 * (`:` → `%3A`); SigV4 then encodes that path again for the canonical URI (`%253A`).
 */
export function bedrockInvokeUrl(base: string, modelId: string): string {
  return `${base}/model/${encodeSegment(modelId)}/invoke`;
}

function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Signs a POST of `body` to `url` with SigV4 (@smithy/signature-v4, AWS's own signer) and
 * returns every header to send: host, content-type, accept, x-amz-date, the session token
 * when there is one, and authorization.
 */
export async function signBedrockRequest(input: {
  url: string;
  body: string;
  credentials: AwsCredentials;
  region: string;
  date?: Date;
}): Promise<Record<string, string>> {
  const url = new URL(input.url);
  const signer = new SignatureV4({
    service: BEDROCK_SIGNING_SERVICE,
    region: input.region,
    credentials: input.credentials,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === "" ? {} : { port: Number(url.port) }),
      path: url.pathname,
      query,
      headers: { host: url.host, "content-type": "application/json", accept: "application/json" },
      body: input.body,
    },
    input.date === undefined ? {} : { signingDate: input.date },
  );
  return signed.headers;
}

export function credentialsOf(params: ProviderParams): AwsCredentials {
  const {
    aws_access_key_id: accessKeyId,
    aws_secret_access_key: secretAccessKey,
    aws_session_token: sessionToken,
  } = params;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw upstreamError(
      "auth_failed",
      `${PROVIDER}: no AWS credentials (aws_access_key_id / aws_secret_access_key)`,
    );
  }
  return sessionToken === undefined
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}
