/**
 * Where a Bedrock deployment's AWS credentials come from, and one SigV4 signer per region and
 * credential source (contract: *Cloud credentials and Azure names*):
 * - a static pair in the deployment (`aws_access_key_id` + `aws_secret_access_key`, with its
 *   own `aws_session_token` if any): used as one unit;
 * - else the AWS SDK's default chain (`fromNodeProviderChain`: environment, the shared files
 *   with `aws_profile_name`, SSO, web identity, ECS container credentials, EC2 instance
 *   metadata);
 * - and with `aws_role_name`, that role assumed through STS from whichever of those applies
 *   (`fromTemporaryCredentials`, session name `aws_session_name`), or, with LiteLLM's
 *   `aws_web_identity_token`, from that token (`fromWebToken`: AssumeRoleWithWebIdentity);
 *   `aws_sts_endpoint` is where STS is called (else the SDK's own rules: AWS_ENDPOINT_URL_STS).
 * Temporary credentials are cached and refreshed five minutes before they expire (the SDK's
 * own `memoizeIdentityProvider`, as its clients do); a refused signature forces a refresh.
 */
import { createHash } from "node:crypto";
import {
  doesIdentityRequireRefresh,
  isIdentityExpired,
  memoizeIdentityProvider,
} from "@smithy/core";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import type { ProviderParams } from "../params.ts";
import type { AdapterDeployment } from "../types.ts";
import { PROVIDER } from "./errors.ts";

/** SigV4 signs Bedrock Runtime as `bedrock`, not `bedrock-runtime`. */
export const BEDROCK_SIGNING_SERVICE = "bedrock";

/** The session name STS records for an assumed role when the deployment names none. */
export const DEFAULT_SESSION_NAME = "imagegate";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

type Provider = (options?: { forceRefresh?: boolean }) => Promise<AwsCredentials>;

/** One credential source of one deployment: where it comes from, said without secrets. */
export interface CredentialSource {
  /** Identifies the source (secrets enter only through a hash). */
  readonly key: string;
  /** What was tried, for messages: "the default chain (…), then role …". */
  readonly describe: string;
  readonly provider: Provider;
}

const CHAIN =
  "environment (AWS_ACCESS_KEY_ID), shared files (AWS_PROFILE), SSO, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), ECS container credentials, EC2 instance metadata";

export function describeSource(params: ProviderParams): string {
  if (params.aws_access_key_id !== undefined && params.aws_secret_access_key !== undefined)
    return "the deployment's static key pair";
  const base =
    params.aws_profile_name !== undefined
      ? `the AWS default chain with profile '${params.aws_profile_name}' (shared files, SSO, web identity, ECS container credentials, EC2 instance metadata)`
      : `the AWS default chain (${CHAIN})`;
  const sts = params.aws_sts_endpoint === undefined ? "STS" : `STS at ${params.aws_sts_endpoint}`;
  if (params.aws_web_identity_token !== undefined)
    return `the deployment's aws_web_identity_token for role ${params.aws_role_name} through ${sts}`;
  return params.aws_role_name === undefined
    ? base
    : `${base}, then role ${params.aws_role_name} through ${sts}`;
}

function sourceKey(params: ProviderParams): string {
  const { aws_access_key_id: id, aws_secret_access_key: secret, aws_session_token: token } = params;
  if (id !== undefined && secret !== undefined) {
    return `static\0${createHash("sha256")
      .update(`${id}\0${secret}\0${token ?? ""}`)
      .digest("hex")}`;
  }
  const tokenHash =
    params.aws_web_identity_token === undefined
      ? ""
      : createHash("sha256").update(params.aws_web_identity_token).digest("hex");
  return `chain\0${params.aws_profile_name ?? ""}\0${params.aws_role_name ?? ""}\0${params.aws_session_name ?? ""}\0${params.aws_sts_endpoint ?? ""}\0${tokenHash}`;
}

function providerFor(params: ProviderParams, region: string): Provider {
  const { aws_access_key_id: id, aws_secret_access_key: secret, aws_session_token: token } = params;
  if (id !== undefined && secret !== undefined) {
    const fixed: AwsCredentials =
      token === undefined
        ? { accessKeyId: id, secretAccessKey: secret }
        : { accessKeyId: id, secretAccessKey: secret, sessionToken: token };
    return async () => fixed;
  }
  // The SDK's providers are loaded when first asked (they are large, and static keys need none).
  let made: Promise<Provider> | undefined;
  return (options) => {
    made ??= import("@aws-sdk/credential-providers").then((sdk) =>
      sdkProvider(sdk, params, region),
    );
    return made.then((provider) => provider(options));
  };
}

function sdkProvider(
  {
    fromNodeProviderChain,
    fromTemporaryCredentials,
    fromWebToken,
  }: typeof import("@aws-sdk/credential-providers"),
  params: ProviderParams,
  region: string,
): Provider {
  const stsConfig = {
    region,
    ...(params.aws_sts_endpoint === undefined ? {} : { endpoint: params.aws_sts_endpoint }),
  };
  const sessionName = params.aws_session_name ?? DEFAULT_SESSION_NAME;
  if (params.aws_web_identity_token !== undefined && params.aws_role_name !== undefined) {
    const web = fromWebToken({
      roleArn: params.aws_role_name,
      webIdentityToken: params.aws_web_identity_token,
      roleSessionName: sessionName,
      clientConfig: stsConfig,
    });
    return memoizeIdentityProvider(web, isIdentityExpired, doesIdentityRequireRefresh) as Provider;
  }
  // The chain memoizes itself (and refreshes before expiry).
  const base = fromNodeProviderChain({
    ...(params.aws_profile_name === undefined ? {} : { profile: params.aws_profile_name }),
    clientConfig: { region },
  });
  if (params.aws_role_name === undefined) return base;
  const role = fromTemporaryCredentials({
    masterCredentials: base,
    params: { RoleArn: params.aws_role_name, RoleSessionName: sessionName },
    clientConfig: stsConfig,
  });
  return memoizeIdentityProvider(role, isIdentityExpired, doesIdentityRequireRefresh) as Provider;
}

interface Signer {
  source: CredentialSource;
  signer: SignatureV4;
  /** Set when Bedrock refused a signature: the next call asks the source afresh. */
  stale: boolean;
}

/** Signers by region and credential source. */
const signers = new Map<string, Signer>();

function signerFor(params: ProviderParams, region: string): Signer {
  const key = `${region}\0${sourceKey(params)}`;
  let entry = signers.get(key);
  if (entry === undefined) {
    const provider = providerFor(params, region);
    const source: CredentialSource = { key, describe: describeSource(params), provider };
    const credentials = async () => {
      const forceRefresh = entry!.stale;
      entry!.stale = false;
      return provider(forceRefresh ? { forceRefresh } : undefined);
    };
    entry = {
      source,
      signer: new SignatureV4({
        service: BEDROCK_SIGNING_SERVICE,
        region,
        credentials,
        sha256: Hash.bind(null, "sha256"),
        applyChecksum: false,
      }),
      stale: false,
    };
    signers.set(key, entry);
  }
  return entry;
}

/** The signer of a deployment; its credentials are fetched (and refreshed) as it signs. */
export function bedrockSigner(params: ProviderParams): SignatureV4 {
  return signerFor(params, regionOf(params)).signer;
}

/** Bedrock refused the signature: the deployment's source is asked afresh next time. */
export function credentialsRefused(params: ProviderParams): void {
  signerFor(params, regionOf(params)).stale = true;
}

export function regionOf(params: ProviderParams): string {
  return params.aws_region_name ?? "us-east-1";
}

/**
 * A failed credential source → 502 `upstream_auth_failed` naming the deployment and the
 * sources tried. The SDK's message says why (no source matched, STS refused, an endpoint
 * unreachable); it is cut short, and long opaque runs (tokens) are never repeated.
 */
export function credentialsFailed(deployment: AdapterDeployment, cause: unknown): GatewayError {
  return upstreamError(
    "auth_failed",
    `${PROVIDER}: deployment '${deployment.id}' has no AWS credentials: ${describeSource(deployment.params)} failed: ${safeReason(cause)}`,
    { cause },
  );
}

function safeReason(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return (
    message
      .split(/\r?\n/)[0]!
      .replace(/[A-Za-z0-9+/=_-]{40,}/g, "[…]")
      .slice(0, 300) || "no reason given"
  );
}

/**
 * Resolves a deployment's credentials once (at startup): undefined when they resolve, else
 * a warning naming the deployment and the sources tried.
 */
export async function probeBedrockCredentials(
  deployment: AdapterDeployment,
): Promise<string | undefined> {
  const { params } = deployment;
  if (params.aws_access_key_id !== undefined && params.aws_secret_access_key !== undefined)
    return undefined;
  try {
    await signerFor(params, regionOf(params)).source.provider();
    return undefined;
  } catch (e) {
    return `Bedrock deployment ${deployment.id} (model '${deployment.group}'): no AWS credentials from ${describeSource(params)}: ${safeReason(e)}; its requests fail with upstream_auth_failed until a source works`;
  }
}
