/**
 * Downloads an image a provider answered with as a URL (for `b64_json`, or to re-host
 * it), guarded against SSRF: a malicious or compromised upstream must not be able to
 * make the gateway fetch anything but that provider's image hosts (host-policy.ts).
 *
 * - Before each request, the URL must pass the host policy.
 * - Host names are resolved by the connection itself through a lookup that refuses
 *   non-public addresses, so the address checked is the address connected to (no
 *   DNS-rebinding window).
 * - Redirects are followed (at most 3) only when the target passes the same checks.
 * - The body is capped in size (declared and actual), the whole download in time, and
 *   only image (or untyped) content is accepted. No credentials are ever sent.
 */
import { type Deadline, deadline } from "../runtime/deadline.ts";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { Agent, request } from "undici";
import { GatewayError } from "../errors/errors.ts";
import type { Provider } from "../catalog/providers.ts";
import { first } from "../providers/http.ts";
import { PROVIDER_IMAGE_HOSTS } from "../providers/image-hosts.ts";
import { type HostRule, isPublicAddress, providerHostRules, refusal } from "./host-policy.ts";
import type { DownloadSettings } from "./settings.ts";

export interface Download {
  /** The media type the host declared, when it is an image type. */
  mediaType: string | undefined;
  /** The body, capped; reading it past the cap or the deadline throws. */
  body: AsyncIterable<Uint8Array>;
}

/** A URL a client sent (an edit's input image): only `allowed_image_hosts` admit it. */
const CLIENT_SOURCE = "client";
type Client = typeof CLIENT_SOURCE;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;
const PRIVATE_ADDRESS = "EIMAGEGATE_NON_PUBLIC_ADDRESS";

/** A DNS lookup that fails for any name resolving to a non-public address. */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    const blocked = addresses.find((a) => !isPublicAddress(a.address));
    if (blocked !== undefined || addresses.length === 0) {
      const e = Object.assign(new Error(`${hostname} resolves to a non-public address`), {
        code: PRIVATE_ADDRESS,
      });
      return callback(e, "", 0);
    }
    if (options.all)
      (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

export class ImageDownloader {
  readonly #settings: DownloadSettings;
  readonly #rules: ReadonlyMap<Provider, readonly HostRule[]>;
  readonly #agent = new Agent({
    connect: { lookup: publicOnlyLookup },
    keepAliveTimeout: 10_000,
    connections: 64,
  });

  constructor(
    settings: DownloadSettings,
    providerHosts: Readonly<Record<Provider, readonly string[]>> = PROVIDER_IMAGE_HOSTS,
  ) {
    this.#settings = settings;
    this.#rules = new Map(
      (Object.entries(providerHosts) as [Provider, readonly string[]][]).map(
        ([provider, hosts]) => [provider, [...providerHostRules(hosts), ...settings.allowedHosts]],
      ),
    );
  }

  /** Starts downloading `url`, an image `provider` answered with; the body streams. */
  async open(url: string, provider: Provider | Client, signal: AbortSignal): Promise<Download> {
    // Ends when the caller goes away or the time is up; disposed when the body has been read.
    const within = deadline(signal, this.#settings.timeoutMs, "download deadline");
    try {
      return await this.#follow(url, provider, signal, within);
    } catch (e) {
      within.dispose();
      throw e;
    }
  }

  async #follow(
    url: string,
    provider: Provider | Client,
    signal: AbortSignal,
    within: Deadline,
  ): Promise<Download> {
    const { maxBytes, timeoutMs } = this.#settings;
    let current: URL;
    try {
      current = new URL(url);
    } catch {
      throw refused(provider, "it is not a valid URL");
    }
    for (let hops = 0; ; hops++) {
      const rules = provider === CLIENT_SOURCE ? undefined : this.#rules.get(provider as Provider);
      const why = refusal(current, rules ?? this.#settings.allowedHosts);
      if (why !== undefined) throw refused(provider, why);
      const where = `${current.protocol}//${current.host}`;
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(current, {
          dispatcher: this.#agent,
          method: "GET",
          headers: { accept: "image/*" },
          signal: within.signal,
        });
      } catch (e) {
        throw failure(e, provider, where, signal, within, timeoutMs);
      }
      if (REDIRECTS.has(res.statusCode)) {
        discard(res.body);
        const location = first(res.headers.location);
        if (hops >= MAX_REDIRECTS || location === undefined) {
          throw failed(
            where,
            `it answered ${res.statusCode} ${hops >= MAX_REDIRECTS ? "once too often" : "without a location"}`,
          );
        }
        current = new URL(location, current);
        continue;
      }
      if (res.statusCode !== 200) {
        discard(res.body);
        throw failed(where, `it answered ${res.statusCode}`);
      }
      const declared = Number(first(res.headers["content-length"]));
      if (declared > maxBytes) {
        discard(res.body);
        throw tooLarge(where, maxBytes);
      }
      const contentType = (first(res.headers["content-type"]) ?? "")
        .split(";", 1)[0]!
        .trim()
        .toLowerCase();
      if (
        contentType !== "" &&
        contentType !== "application/octet-stream" &&
        !contentType.startsWith("image/")
      ) {
        discard(res.body);
        throw failed(where, `it sent ${contentType}, not an image`);
      }
      const body = capped(
        res.body,
        maxBytes,
        (e) => failure(e, provider, where, signal, within, timeoutMs),
        where,
        () => within.dispose(),
      );
      return { mediaType: contentType.startsWith("image/") ? contentType : undefined, body };
    }
  }

  /** Downloads `url` whole, for inlining as `b64_json`. */
  async fetch(
    url: string,
    provider: Provider | Client,
    signal: AbortSignal,
  ): Promise<{ mediaType: string | undefined; bytes: Buffer }> {
    const download = await this.open(url, provider, signal);
    const chunks: Uint8Array[] = [];
    for await (const chunk of download.body) chunks.push(chunk);
    return { mediaType: download.mediaType, bytes: Buffer.concat(chunks) };
  }

  /**
   * Downloads an image a client named by URL (an edit's input): only from
   * `general_settings.allowed_image_hosts`, under the same guard (public addresses unless
   * listed, redirects re-checked, size and time capped). Failures are the client's 400s.
   */
  async fetchForClient(
    url: string,
    param: string,
    signal: AbortSignal,
  ): Promise<{ mediaType: string | undefined; bytes: Buffer }> {
    try {
      return await this.fetch(url, CLIENT_SOURCE, signal);
    } catch (e) {
      if (!(e instanceof GatewayError) || signal.aborted) throw e;
      throw new GatewayError("invalid_request", `Invalid '${param}': ${e.message}`, {
        param,
        code: e.code === "image_url_refused" ? "image_url_not_allowed" : "invalid_image_url",
        cause: e,
      });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

async function* capped(
  body: AsyncIterable<Uint8Array> & Parameters<typeof discard>[0],
  maxBytes: number,
  explain: (e: unknown) => unknown,
  where: string,
  done: () => void,
): AsyncIterable<Uint8Array> {
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(where, maxBytes);
      yield chunk;
    }
  } catch (e) {
    throw e instanceof GatewayError ? e : explain(e);
  } finally {
    done();
    discard(body);
  }
}

/** Drops a response body; undici reports an unread body's destruction as an error event. */
function discard(body: {
  on(event: "error", listener: () => void): unknown;
  destroy(): void;
}): void {
  body.on("error", () => {});
  body.destroy();
}

function failure(
  e: unknown,
  provider: Provider | Client,
  where: string,
  caller: AbortSignal,
  within: Deadline,
  timeoutMs: number,
) {
  if (caller.aborted) return caller.reason ?? e;
  if (within.expired) {
    return new GatewayError(
      "timeout",
      `Downloading the image from ${where} took longer than ${timeoutMs / 1000} s.`,
      { cause: e },
    );
  }
  if (e instanceof GatewayError) return e;
  if ((e as { code?: string }).code === PRIVATE_ADDRESS)
    return refused(provider, `${where} resolves to a non-public address`);
  const code = (e as { code?: string }).code;
  return failed(where, `${code ?? (e as Error).message}`, e);
}

function refused(provider: Provider | Client, why: string): GatewayError {
  return new GatewayError(
    "upstream",
    provider === CLIENT_SOURCE
      ? `the gateway will not fetch this image URL: ${why}.`
      : `The ${provider} upstream answered with an image URL the gateway will not fetch: ${why}.`,
    {
      code: "image_url_refused",
    },
  );
}

function failed(where: string, why: string, cause?: unknown): GatewayError {
  return new GatewayError("upstream", `Downloading the image from ${where} failed: ${why}.`, {
    code: "image_download_failed",
    cause,
  });
}

function tooLarge(where: string, maxBytes: number): GatewayError {
  return new GatewayError(
    "upstream",
    `The image at ${where} is larger than the download limit of ${maxBytes} bytes.`,
    {
      code: "image_too_large",
    },
  );
}
