/**
 * The image store: where images the gateway serves itself live until they expire. Two
 * backends implement it, the local filesystem (`local.ts`, the default) and S3-compatible
 * object storage (`s3.ts`). A stored image is immutable and named `<id>.<ext>`, the file
 * name its URL carries; the id is 128 random bits, so names cannot be guessed.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { GatewayError } from "../errors/errors.ts";
import { own } from "../runtime/own.ts";

/** What the store knows about one image. */
export interface StoredImage {
  /** `<id>.<ext>`: the name in `/v1/images/files/<name>`. */
  readonly name: string;
  readonly mediaType: string;
  readonly size: number;
  /** A strong entity tag, quoted. */
  readonly etag: string;
  /** Epoch milliseconds after which the image is gone. */
  readonly expiresAt: number;
}

/** Image bytes in memory, or a stream of them (a download on its way to disk). */
export type ImageBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions {
  mediaType: string;
  signal?: AbortSignal;
}

export interface ImageStore {
  /** Stores an image; it becomes visible only once completely written. */
  put(body: ImageBody, options: PutOptions): Promise<StoredImage>;
  /** The image's metadata, or undefined when it does not exist or has expired. */
  head(name: string): Promise<StoredImage | undefined>;
  /** The image and a stream of its bytes, or undefined when it does not exist or has expired. */
  get(name: string): Promise<{ image: StoredImage; body: Readable } | undefined>;
  delete(name: string): Promise<void>;
  /** Removes every expired image; returns how many were removed. */
  sweep(now?: number): Promise<number>;
  /**
   * Present when the backend hands out its own time-limited URLs (S3 presigned mode):
   * a URL for `image` that the client downloads from directly, valid until it expires.
   */
  directUrl?(image: StoredImage): Promise<string>;
  close(): Promise<void>;
}

/** Media types the store names files for; anything else is stored as opaque bytes. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
  "image/avif": "avif",
  "image/svg+xml": "svg",
  "application/octet-stream": "bin",
};

const MEDIA_TYPES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(EXTENSIONS).map(([type, ext]) => [ext, type]),
);

/** The one shape a stored name may have: 32 lowercase hex digits, a dot, a known extension. */
const NAME = new RegExp(`^([0-9a-f]{32})\\.(${Object.values(EXTENSIONS).join("|")})$`);

/** The media type as stored: known types keep their name, anything else becomes opaque bytes. */
export function normalizeMediaType(mediaType: string): string {
  const bare = mediaType.split(";", 1)[0]!.trim().toLowerCase();
  return bare === "image/jpg"
    ? "image/jpeg"
    : Object.hasOwn(EXTENSIONS, bare)
      ? bare
      : "application/octet-stream";
}

export function extensionFor(mediaType: string): string {
  return EXTENSIONS[normalizeMediaType(mediaType)]!;
}

export function mediaTypeFor(ext: string): string | undefined {
  return own(MEDIA_TYPES, ext);
}

/** A fresh name for an image of `mediaType`. */
export function newImageName(mediaType: string): string {
  return `${randomBytes(16).toString("hex")}.${extensionFor(mediaType)}`;
}

/** Splits a stored name into id and extension; undefined for anything that is not one. */
export function parseImageName(name: string): { id: string; ext: string } | undefined {
  const match = NAME.exec(name);
  return match ? { id: match[1]!, ext: match[2]! } : undefined;
}

/** Expiry in whole seconds (the precision URLs carry), as epoch milliseconds. */
export function expiryFrom(now: number, ttlSeconds: number): number {
  return (Math.floor(now / 1000) + ttlSeconds) * 1000;
}

/** Iterates a body as chunks, whether it is bytes in memory or a stream. */
export async function* chunksOf(body: ImageBody): AsyncIterable<Uint8Array> {
  if (body instanceof Uint8Array) yield body;
  else yield* body;
}

/** The store cannot take an image without going over its size cap. */
export function storeFull(maxBytes: number): GatewayError {
  return new GatewayError(
    "upstream",
    `The gateway's image store is full (limit ${maxBytes} bytes); try again later.`,
    {
      code: "image_store_full",
      httpStatus: 503,
    },
  );
}
