/**
 * Signed image URLs: `…/v1/images/files/<id>.<ext>?expires=<epoch s>&sig=<HMAC>`, where the
 * HMAC-SHA256 covers the file name (id and extension) and the expiry, so neither can be
 * changed without the key. The key comes from `general_settings.url_signing_key`, or is
 * generated at start (and URLs then die with the process).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Domain separation: a signature made here means nothing to any other HMAC user of the key. */
const CONTEXT = "imagegate/v1/images/files";
const SIG = /^[A-Za-z0-9_-]{43}$/;
const EXPIRES = /^[1-9]\d{0,11}$/;

export class UrlSigner {
  readonly #key: Buffer;
  /** True when the key was generated at start rather than configured. */
  readonly generated: boolean;

  constructor(key?: string | Uint8Array) {
    this.generated = key === undefined;
    this.#key = key === undefined ? randomBytes(32) : Buffer.from(key);
  }

  /** The signature for `name` valid until `expiresSeconds` (epoch seconds). */
  sign(name: string, expiresSeconds: number): string {
    return createHmac("sha256", this.#key)
      .update(`${CONTEXT}\n${name}\n${expiresSeconds}`)
      .digest("base64url");
  }

  /** The query string for a URL to `name` that expires at `expiresAt` (epoch ms). */
  query(name: string, expiresAt: number): string {
    const expires = Math.floor(expiresAt / 1000);
    return `expires=${expires}&sig=${this.sign(name, expires)}`;
  }

  /**
   * Whether `expires`/`sig` (as the query carried them) are a valid, unexpired signature
   * for `name`; returns the expiry in epoch ms when they are.
   */
  verify(
    name: string,
    expires: string | null,
    sig: string | null,
    now = Date.now(),
  ): number | undefined {
    if (expires === null || sig === null || !EXPIRES.test(expires) || !SIG.test(sig))
      return undefined;
    const expected = Buffer.from(this.sign(name, Number(expires)));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expiresAt = Number(expires) * 1000;
    return expiresAt > now ? expiresAt : undefined;
  }
}
