/**
 * What every provider adapter offers the router: one upstream call that turns our request
 * into images, and throws a GatewayError for anything else.
 */
import type { Deployment } from "../config/deployment.ts";
import type { CreateImageRequest, Usage } from "../gen/imagegate/v1/images_pb.js";
import type { Allocate } from "../runtime/buffer-pool.ts";
import type { Provider } from "./env.ts";

/** One image as an upstream delivered it: bytes, or a URL on the provider's host. */
export interface GeneratedImage {
  bytes?: Uint8Array;
  url?: string;
  /** Media type of the bytes (or of what the URL serves). */
  mimeType: string;
  revisedPrompt?: string;
}

/** A provider's answer in our vocabulary; upstream JSON never leaves the adapter. */
export interface GenerationResult {
  images: GeneratedImage[];
  usage?: Usage;
  /** Echoes of what the upstream actually did, where it says. */
  size?: string;
  quality?: string;
  background?: string;
  outputFormat?: string;
  /** Images the provider's safety system removed from this answer (not charged). */
  filtered: number;
  /** What the provider says it charged for this answer (e.g. Recraft's `credits`), in USD. */
  costUsd?: number;
}

export interface UpstreamCall {
  deployment: Deployment;
  request: CreateImageRequest;
  /** Aborted when the client goes away or the attempt's deadline passes. */
  signal: AbortSignal;
  /** Memory for large decoded images, given back when the request's answer is written. */
  allocate?: Allocate;
}

export interface ProviderAdapter {
  readonly provider: Provider;
  generate(call: UpstreamCall): Promise<GenerationResult>;
}
