/**
 * One credential's OAuth access token (Entra ID for Azure, a Google service account for
 * Vertex AI): fetched on first use with exactly one request in flight however many calls
 * wait, refreshed ahead of expiry while the current token still serves, never sent in its
 * last moments, and forgotten when the upstream rejects it. A caller that gives up stops
 * waiting; the fetch carries on for the others, and a failed fetch is not cached.
 */
import { untilAborted } from "./abort.ts";

export interface FetchedToken {
  token: string;
  expiresInSeconds: number;
}

/** Longest head start a refresh gets before the token expires (at most half its life). */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/** Clock skew allowance: a token is not sent in its last minute (at most a quarter of its life). */
const EXPIRY_SKEW_MS = 60 * 1000;

export class TokenCache {
  readonly #fetch: () => Promise<FetchedToken>;
  readonly #now: () => number;
  #token: string | undefined;
  /** Past this, a new token is fetched (the current one still serves meanwhile). */
  #refreshAt = 0;
  /** Past this, the current token is no longer sent. */
  #expiresAt = 0;
  #pending: Promise<string> | undefined;

  constructor(fetch: () => Promise<FetchedToken>, now: () => number = Date.now) {
    this.#fetch = fetch;
    this.#now = now;
  }

  get(signal: AbortSignal): Promise<string> {
    const now = this.#now();
    if (this.#token !== undefined && now < this.#refreshAt) return Promise.resolve(this.#token);
    if (signal.aborted) return Promise.reject(signal.reason);
    this.#pending ??= this.#refresh();
    if (this.#token !== undefined && now < this.#expiresAt) return Promise.resolve(this.#token);
    return untilAborted(this.#pending, signal);
  }

  /** Forgets the token (the upstream refused it), so the next call fetches another. */
  invalidate(): void {
    this.#token = undefined;
    this.#refreshAt = 0;
    this.#expiresAt = 0;
  }

  #refresh(): Promise<string> {
    const pending = this.#fetch().then(
      ({ token, expiresInSeconds }) => {
        const obtained = this.#now();
        const lifetime = expiresInSeconds * 1000;
        this.#token = token;
        this.#expiresAt = obtained + lifetime - Math.min(EXPIRY_SKEW_MS, lifetime / 4);
        this.#refreshAt = obtained + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2);
        this.#pending = undefined;
        return token;
      },
      (e: unknown) => {
        this.#pending = undefined;
        throw e;
      },
    );
    // A refresh nobody waits for any more (one ahead of expiry, or its callers gone) must not
    // fail unhandled; the next call tries again.
    pending.catch(() => {});
    return pending;
  }
}
