/**
 * The images the gateway serves itself, as the service and the files route see them:
 * `publish` stores an image and answers the URL a client gets; `open` checks a URL's
 * signature and then finds the image. The store is swept of expired images in the
 * background.
 */
import type { Readable } from "node:stream";
import type { Logger } from "../log/logger.ts";
import { openLocalStore } from "./local.ts";
import type { StorageSettings } from "./settings.ts";
import { UrlSigner } from "./signing.ts";
import type { ImageBody, ImageStore, StoredImage } from "./store.ts";

/** Where the files route lives; a stored image's URL is this plus `<id>.<ext>`. */
export const FILES_PATH = "/v1/images/files/";

export type FileLookup =
  | { status: 403 }
  | { status: 404 }
  | {
      status: 200;
      image: StoredImage /** When the URL itself stops working (epoch ms). */;
      urlExpiresAt: number;
      body?: Readable;
    };

export interface ImageFilesOptions {
  store: ImageStore;
  signer: UrlSigner;
  sweepIntervalMs: number;
  logger: Logger;
  now?: () => number;
}

export class ImageFiles {
  readonly store: ImageStore;
  readonly #signer: UrlSigner;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;
  #baseUrl: string | undefined;
  #sweeping: Promise<void> | undefined;

  constructor(options: ImageFilesOptions) {
    this.store = options.store;
    this.#signer = options.signer;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => void this.sweep(), options.sweepIntervalMs);
    this.#timer.unref();
  }

  /** The base of the URLs handed out (`server.public_url`, else where the gateway listens). */
  setBaseUrl(url: string): void {
    this.#baseUrl = url.replace(/\/+$/, "");
  }

  /** Stores an image and returns the URL a client downloads it from until it expires. */
  async publish(body: ImageBody, mediaType: string, signal?: AbortSignal): Promise<string> {
    const image = await this.store.put(body, { mediaType, signal });
    return this.urlFor(image);
  }

  async urlFor(image: StoredImage): Promise<string> {
    if (this.store.directUrl) return this.store.directUrl(image);
    if (this.#baseUrl === undefined)
      throw new Error("ImageFiles.setBaseUrl was not called before publishing");
    return `${this.#baseUrl}${FILES_PATH}${image.name}?${this.#signer.query(image.name, image.expiresAt)}`;
  }

  /**
   * Looks up `name` for the files route. The signature is checked first, so without a
   * valid one every name answers the same 403, whether or not the image exists.
   */
  async open(name: string, query: URLSearchParams, withBody: boolean): Promise<FileLookup> {
    const urlExpiresAt = this.#signer.verify(
      name,
      query.get("expires"),
      query.get("sig"),
      this.#now(),
    );
    if (urlExpiresAt === undefined) return { status: 403 };
    if (!withBody) {
      const image = await this.store.head(name);
      return image ? { status: 200, image, urlExpiresAt } : { status: 404 };
    }
    const found = await this.store.get(name);
    return found
      ? { status: 200, image: found.image, urlExpiresAt, body: found.body }
      : { status: 404 };
  }

  /** Removes expired images now (the background timer calls this too). */
  async sweep(): Promise<void> {
    this.#sweeping ??= this.store
      .sweep()
      .then((removed) => {
        if (removed > 0) this.#logger.log("debug", "image store swept", { removed });
      })
      .catch((e: unknown) =>
        this.#logger.log("warn", "image store sweep failed", { error: String(e) }),
      )
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sweeping;
    await this.store.close();
  }
}

/** Opens the configured store (creating the local folder) and the URL signer. */
export async function openImageFiles(
  settings: StorageSettings,
  logger: Logger,
): Promise<ImageFiles> {
  // The S3 SDK is loaded only when it is used.
  const store =
    settings.backend === "s3"
      ? new (await import("./s3.ts")).S3ImageStore({
          settings: settings.s3!,
          ttlSeconds: settings.ttlSeconds,
        })
      : await openLocalStore({
          dir: settings.dir,
          ttlSeconds: settings.ttlSeconds,
          maxBytes: settings.maxBytes,
        });
  const signer = new UrlSigner(settings.signingKey);
  if (signer.generated && !(settings.backend === "s3" && settings.s3?.presignedUrls)) {
    logger.log(
      "info",
      "image URL signing key generated at start (general_settings.url_signing_key is not set): image URLs stop working when the gateway restarts",
    );
  }
  const where = settings.backend === "s3" ? `s3 bucket ${settings.s3!.bucket}` : settings.dir;
  logger.log(
    "info",
    `images served by the gateway are kept in ${where} for ${settings.ttlSeconds} s`,
  );
  return new ImageFiles({
    store,
    signer,
    sweepIntervalMs: settings.sweepIntervalSeconds * 1000,
    logger,
  });
}
