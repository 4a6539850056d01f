/**
 * The invoke URL and the SigV4 signature (service `bedrock`) of one call; the deployment's
 * signer and where its credentials come from are credentials.ts's.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { ProviderParams } from "../params.ts";
import { type AwsCredentials, BEDROCK_SIGNING_SERVICE } from "./credentials.ts";

export { type AwsCredentials, BEDROCK_SIGNING_SERVICE };

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

/**
 * Signs a POST of `body` to `url` with SigV4 (@smithy/signature-v4, AWS's own signer): with
 * `signer` (the deployment's, credentials.ts), else with fixed `credentials` in `region`.
 * Returns every header to send: host, content-type, accept, x-amz-date, the session token
 * when there is one, and authorization.
 */
export async function signBedrockRequest(
  input: {
    url: string;
    body: string;
    date?: Date;
  } & ({ signer: SignatureV4 } | { credentials: AwsCredentials; region: string }),
): Promise<Record<string, string>> {
  const url = new URL(input.url);
  const signer =
    "signer" in input
      ? input.signer
      : new SignatureV4({
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
