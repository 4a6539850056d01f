/**
 * The config's image-serving settings: the `storage:` section, and the `general_settings`
 * keys for URL signing and provider-URL downloads, with their defaults.
 */
import { parseHostRule } from "../store/host-policy.ts";
import {
  DEFAULT_DOWNLOAD_MAX_BYTES,
  DEFAULT_DOWNLOAD_TIMEOUT_MS,
  DEFAULT_MAX_BYTES,
  DEFAULT_S3_REGION,
  DEFAULT_STORE_DIR,
  DEFAULT_SWEEP_INTERVAL_SECONDS,
  DEFAULT_TTL_SECONDS,
  type DownloadSettings,
  type StorageSettings,
} from "../store/settings.ts";
import { ConfigError } from "./env.ts";
import type { ConfigFile } from "./schema.ts";

export type { DownloadSettings, StorageSettings };

export function storageSettings(file: ConfigFile): StorageSettings {
  const storage = file.storage ?? {};
  const s3 = storage.s3;
  return {
    backend: storage.backend ?? "local",
    dir: storage.dir ?? DEFAULT_STORE_DIR,
    ttlSeconds: storage.ttl_seconds ?? DEFAULT_TTL_SECONDS,
    maxBytes: storage.max_bytes ?? DEFAULT_MAX_BYTES,
    sweepIntervalSeconds: storage.sweep_interval_seconds ?? DEFAULT_SWEEP_INTERVAL_SECONDS,
    s3: s3 && {
      bucket: s3.bucket,
      prefix: s3.prefix ?? "",
      endpoint: s3.endpoint,
      region: s3.region ?? DEFAULT_S3_REGION,
      forcePathStyle: s3.force_path_style ?? false,
      credentials:
        s3.access_key_id !== undefined && s3.secret_access_key !== undefined
          ? {
              accessKeyId: s3.access_key_id,
              secretAccessKey: s3.secret_access_key,
              sessionToken: s3.session_token,
            }
          : undefined,
      presignedUrls: s3.presigned_urls ?? false,
    },
    signingKey: file.general_settings?.url_signing_key,
  };
}

export function downloadSettings(file: ConfigFile, source: string): DownloadSettings {
  const general = file.general_settings ?? {};
  const allowedHosts = (general.allowed_image_hosts ?? []).map((entry, i) => {
    try {
      return parseHostRule(entry);
    } catch (e) {
      throw new ConfigError(
        `${source}: general_settings.allowed_image_hosts[${i}]: ${(e as Error).message}`,
      );
    }
  });
  return {
    allowedHosts,
    maxBytes: general.image_download_max_bytes ?? DEFAULT_DOWNLOAD_MAX_BYTES,
    timeoutMs:
      (general.image_download_timeout_seconds ?? DEFAULT_DOWNLOAD_TIMEOUT_MS / 1000) * 1000,
  };
}
