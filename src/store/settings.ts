/**
 * What the config says about serving images (built by `config/storage.ts`), with the
 * defaults. Kept free of the backends' imports, so reading a config loads no S3 SDK.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HostRule } from "./host-policy.ts";

export interface StorageSettings {
  backend: "local" | "s3";
  /** The local backend's folder. */
  dir: string;
  ttlSeconds: number;
  /** The local backend's disk cap. */
  maxBytes: number;
  sweepIntervalSeconds: number;
  s3: S3Settings | undefined;
  /** `general_settings.url_signing_key`; generated at start when absent. */
  signingKey: string | undefined;
}

export interface S3Settings {
  bucket: string;
  /** Key prefix, e.g. `imagegate/`; empty for the bucket's root. */
  prefix: string;
  /** A non-AWS endpoint (MinIO, R2, a local test server); AWS's own when absent. */
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** Static credentials; absent: the AWS SDK's default chain (environment, profile, role). */
  credentials:
    | { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined }
    | undefined;
  /** Hand out presigned S3 URLs instead of gateway URLs. */
  presignedUrls: boolean;
}

export interface DownloadSettings {
  /** `general_settings.allowed_image_hosts`, parsed. */
  allowedHosts: readonly HostRule[];
  maxBytes: number;
  timeoutMs: number;
}

export const DEFAULT_TTL_SECONDS = 3600;
export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_SWEEP_INTERVAL_SECONDS = 60;
export const DEFAULT_STORE_DIR = join(tmpdir(), "imagegate-images");
export const DEFAULT_S3_REGION = "us-east-1";
export const DEFAULT_DOWNLOAD_MAX_BYTES = 50 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 60_000;
