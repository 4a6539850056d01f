/**
 * Turns what a provider delivered into the response format the client asked for
 * (contract: `response_format` is honoured for every provider):
 *
 * | asked      | provider gave | the gateway                                                  |
 * |------------|---------------|--------------------------------------------------------------|
 * | `b64_json` | bytes         | passes them on                                               |
 * | `b64_json` | a URL         | downloads it (guarded: `store/download.ts`) and inlines it   |
 * | `url`      | bytes         | stores them and hands out its own signed URL                 |
 * | `url`      | a URL         | passes it on; with `rehost_urls`, streams it into the store  |
 *
 * Images stay bytes the whole way (the proto's `b64_json` is a bytes field; base64 exists
 * only on the JSON wire), and a re-hosted download streams to the store without being
 * held in memory.
 */
import type { Provider } from "../catalog/providers.ts";
import type { GeneratedImage } from "../providers/types.ts";
import type { ImageDownloader } from "../store/download.ts";
import type { ImageFiles } from "../store/files.ts";

export interface DeliveryOptions {
  files: ImageFiles;
  downloader: ImageDownloader;
  /** `general_settings.rehost_urls`: serve provider URLs from the gateway's store too. */
  rehostUrls: boolean;
}

export class ImageDelivery {
  readonly #files: ImageFiles;
  readonly #downloader: ImageDownloader;
  readonly #rehostUrls: boolean;

  constructor(options: DeliveryOptions) {
    this.#files = options.files;
    this.#downloader = options.downloader;
    this.#rehostUrls = options.rehostUrls;
  }

  /** Each image with the field `format` needs (`url` or `bytes`) set, in order. */
  deliver(
    images: readonly GeneratedImage[],
    format: string,
    provider: Provider,
    signal: AbortSignal,
  ): Promise<GeneratedImage[]> {
    return Promise.all(images.map((image) => this.#one(image, format, provider, signal)));
  }

  async #one(
    image: GeneratedImage,
    format: string,
    provider: Provider,
    signal: AbortSignal,
  ): Promise<GeneratedImage> {
    const { bytes, url, ...rest } = image;
    if (format === "url") {
      if (bytes !== undefined)
        return { ...rest, url: await this.#files.publish(bytes, image.mimeType, signal) };
      if (url === undefined || !this.#rehostUrls) return image;
      const download = await this.#downloader.open(url, provider, signal);
      const mimeType = download.mediaType ?? image.mimeType;
      return { ...rest, mimeType, url: await this.#files.publish(download.body, mimeType, signal) };
    }
    if (bytes !== undefined || url === undefined) return image;
    const fetched = await this.#downloader.fetch(url, provider, signal);
    return { ...rest, mimeType: fetched.mediaType ?? image.mimeType, bytes: fetched.bytes };
  }
}
