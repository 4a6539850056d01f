/**
 * The image store on S3-compatible object storage (AWS S3, MinIO, R2, …) through
 * `@aws-sdk/client-s3`. Objects are `<prefix><id>.<ext>` with their media type as
 * Content-Type and their expiry in the `x-amz-meta-expires-at` metadata, so several
 * gateways can share a bucket. With `presignedUrls`, clients get presigned S3 GET URLs
 * (valid until the image expires) instead of gateway URLs.
 *
 * The sweep deletes objects older than the TTL by listing the prefix; for big buckets a
 * lifecycle rule on the prefix does the same job more cheaply. `max_bytes` does not apply
 * here: the bucket's own quotas do.
 */
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { GatewayError } from "../errors/errors.ts";
import {
  chunksOf,
  expiryFrom,
  type ImageBody,
  type ImageStore,
  newImageName,
  normalizeMediaType,
  type PutOptions,
  parseImageName,
  type StoredImage,
} from "./store.ts";
import type { S3Settings } from "./settings.ts";

export interface S3StoreOptions {
  settings: S3Settings;
  ttlSeconds: number;
  now?: () => number;
}

/** SigV4 presigned URLs live at most seven days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
const EXPIRES_META = "expires-at";

export class S3ImageStore implements ImageStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #now: () => number;
  readonly directUrl: ((image: StoredImage) => Promise<string>) | undefined;

  constructor(options: S3StoreOptions) {
    const s = options.settings;
    this.#client = new S3Client({
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.forcePathStyle,
      credentials: s.credentials,
      // Checksums only where S3 requires them: other S3-compatible servers reject the
      // newer trailing-checksum uploads.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    this.#bucket = s.bucket;
    this.#prefix = s.prefix;
    this.#ttlSeconds = options.ttlSeconds;
    this.#now = options.now ?? Date.now;
    this.directUrl = s.presignedUrls ? (image) => this.#presign(image) : undefined;
  }

  async put(body: ImageBody, options: PutOptions): Promise<StoredImage> {
    const mediaType = normalizeMediaType(options.mediaType);
    const name = newImageName(mediaType);
    const expiresAt = expiryFrom(this.#now(), this.#ttlSeconds);
    // PutObject needs the length up front; downloads are size-capped, so buffering them is bounded.
    const bytes = body instanceof Uint8Array ? body : await collect(body, options.signal);
    const command = new PutObjectCommand({
      Bucket: this.#bucket,
      Key: this.#prefix + name,
      Body: bytes,
      ContentLength: bytes.length,
      ContentType: mediaType,
      Expires: new Date(expiresAt),
      Metadata: { [EXPIRES_META]: String(expiresAt) },
    });
    const res = await call(
      () => this.#client.send(command, { abortSignal: options.signal }),
      options.signal,
    );
    return { name, mediaType, size: bytes.length, etag: res.ETag ?? `"${name}"`, expiresAt };
  }

  async head(name: string): Promise<StoredImage | undefined> {
    if (parseImageName(name) === undefined) return undefined;
    const command = new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + name });
    const res = await callOrMissing(() => this.#client.send(command));
    return res && this.#stored(name, res);
  }

  async get(name: string): Promise<{ image: StoredImage; body: Readable } | undefined> {
    if (parseImageName(name) === undefined) return undefined;
    const command = new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + name });
    const res = await callOrMissing(() => this.#client.send(command));
    if (res === undefined) return undefined;
    const body = res.Body as Readable | undefined;
    const image = this.#stored(name, res);
    if (image === undefined || body === undefined) {
      body?.destroy();
      return undefined;
    }
    return { image, body };
  }

  async delete(name: string): Promise<void> {
    if (parseImageName(name) === undefined) return;
    const command = new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + name });
    await call(() => this.#client.send(command));
  }

  async sweep(now = this.#now()): Promise<number> {
    let removed = 0;
    let token: string | undefined;
    const cutoff = now - this.#ttlSeconds * 1000;
    do {
      const list = new ListObjectsV2Command({
        Bucket: this.#bucket,
        Prefix: this.#prefix,
        ContinuationToken: token,
      });
      const page = await call(() => this.#client.send(list));
      for (const object of page.Contents ?? []) {
        const name = object.Key?.slice(this.#prefix.length);
        if (name === undefined || parseImageName(name) === undefined) continue;
        if (object.LastModified !== undefined && object.LastModified.getTime() <= cutoff) {
          const command = new DeleteObjectCommand({ Bucket: this.#bucket, Key: object.Key });
          await call(() => this.#client.send(command));
          removed += 1;
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return removed;
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async #presign(image: StoredImage): Promise<string> {
    const seconds = Math.ceil((image.expiresAt - this.#now()) / 1000);
    return getSignedUrl(
      this.#client,
      new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + image.name }),
      {
        expiresIn: Math.min(Math.max(seconds, 1), MAX_PRESIGN_SECONDS),
      },
    );
  }

  #stored(
    name: string,
    res: {
      ContentType?: string;
      ContentLength?: number;
      ETag?: string;
      Metadata?: Record<string, string>;
    },
  ): StoredImage | undefined {
    const expiresAt = Number(res.Metadata?.[EXPIRES_META]);
    // Objects without our metadata were not written by the gateway: not ours to serve.
    if (!Number.isFinite(expiresAt) || expiresAt <= this.#now()) return undefined;
    return {
      name,
      mediaType: normalizeMediaType(res.ContentType ?? "application/octet-stream"),
      size: res.ContentLength ?? 0,
      etag: res.ETag ?? `"${name}"`,
      expiresAt,
    };
  }
}

/** Runs one S3 call; failures become a 503 naming the store, a caller's abort stays an abort. */
async function call<T>(run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (signal?.aborted) throw signal.reason ?? e;
    throw unavailable(e);
  }
}

/** As `call`, with 404 (no such key) as undefined. */
async function callOrMissing<T>(run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return undefined;
    throw unavailable(e);
  }
}

function unavailable(e: unknown): GatewayError {
  return new GatewayError(
    "upstream",
    `The gateway's image store (S3) failed: ${(e as Error).name ?? String(e)}`,
    {
      code: "image_store_unavailable",
      httpStatus: 503,
      cause: e,
    },
  );
}

async function collect(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of chunksOf(body)) {
    signal?.throwIfAborted();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
