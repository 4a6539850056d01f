/**
 * What every provider adapter offers the router: one upstream call that turns our request
 * into images, and throws a GatewayError for anything else.
 */
import type { ModelSpec } from "../catalog/catalog.ts";
import type { EditInput } from "../catalog/edit-rules.ts";
import type { Provider } from "../catalog/providers.ts";
import type { CreateImageRequest, Usage } from "../gen/imagegate/v1/images_pb.js";
import type { Allocate } from "../runtime/buffer-pool.ts";
import type { ProviderParams } from "./params.ts";

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

/**
 * A deployment as an adapter sees it: config/deployment.ts's `Deployment` is one, with the
 * routing facts adapters never read.
 */
export interface AdapterDeployment {
  /** `model_info.id`: names the deployment to whoever wraps the call (telemetry). */
  readonly id: string;
  /** The public model name it serves. */
  readonly group: string;
  readonly provider: Provider;
  /** The upstream model id (for Azure: the deployment name). */
  readonly model: string;
  /** What the upstream model accepts (the catalog entry). */
  readonly spec: ModelSpec;
  /** Endpoint and credentials, environment already filled in. Holds secrets: never log it. */
  readonly params: ProviderParams;
  readonly timeoutMs: number;
}

export interface UpstreamCall {
  deployment: AdapterDeployment;
  request: CreateImageRequest;
  /** Aborted when the client goes away or the attempt's deadline passes. */
  signal: AbortSignal;
  /** Memory for large decoded images, given back when the request's answer is written. */
  allocate?: Allocate;
  /**
   * An edit or variation (`request` then carries its common fields): the adapter calls the
   * provider's edit API. Only deployments whose catalog entry has `edits:` / `variations:`
   * are given one (the router checks), so an adapter without edits never sees it.
   */
  edit?: EditInput;
}

/**
 * One event of an upstream stream: a partial image, or a finished one (`result` holds one
 * image from a streaming upstream; every image of the answer from a provider that does not
 * stream, which the service sends as one `completed` event each).
 */
export type UpstreamEvent =
  | {
      type: "partial";
      image: GeneratedImage;
      /** 0-based index of the partial within its image. */
      index: number;
      size?: string;
      quality?: string;
      background?: string;
      outputFormat?: string;
    }
  | { type: "completed"; result: GenerationResult };

export interface ProviderAdapter {
  readonly provider: Provider;
  generate(call: UpstreamCall): Promise<GenerationResult>;
  /**
   * Where the upstream streams (models whose catalog entry lists `stream` in `params`): the
   * upstream's events, read as they arrive (one at a time in memory). Resolves once the
   * upstream answered 200; an error status rejects, as `generate` would. Returning (or
   * `return()`) early aborts the upstream call.
   */
  stream?(call: UpstreamCall): Promise<AsyncIterator<UpstreamEvent>>;
}
