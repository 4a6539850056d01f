/**
 * A key the key ring does not know may have been made on another replica a moment ago
 * (the ring reloads the management API's keys every few seconds, admin/api-keys.ts): it
 * is looked up in the database by its digest before the 401, and added to the ring when
 * found, so a key made on one replica works on every other at once.
 *
 * Bounded, since any stranger can present any token: at most `perSecond` lookups a second
 * (past that a miss is the 401 at once, as before), and a token found missing is not asked
 * about again for `forgetMissesMs`. A lookup that fails (the database is down) is a miss.
 */
import type { KeyRing } from "../auth/keys.ts";
import { sha256 } from "../auth/keys.ts";
import { apiKeyOf } from "../admin/api-keys.ts";
import type { KeysRepository } from "../db/keys.ts";

export interface KeyMissOptions {
  perSecond?: number;
  forgetMissesMs?: number;
  /** Misses remembered at most (the oldest forgotten first). */
  maxMisses?: number;
  now?: () => number;
}

export class KeyMiss {
  readonly #repo: KeysRepository;
  readonly #ring: KeyRing;
  readonly #perSecond: number;
  readonly #forgetMs: number;
  readonly #maxMisses: number;
  readonly #now: () => number;
  /** Digest → until when it is known to be missing. */
  readonly #misses = new Map<string, number>();
  #second = 0;
  #used = 0;

  constructor(repo: KeysRepository, ring: KeyRing, options: KeyMissOptions = {}) {
    this.#repo = repo;
    this.#ring = ring;
    this.#perSecond = options.perSecond ?? 20;
    this.#forgetMs = options.forgetMissesMs ?? 5000;
    this.#maxMisses = options.maxMisses ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Looks `token` up; resolves once the ring knows what the database knows of it.
   * Undefined: not looked up (asked too often, or missing a moment ago).
   */
  find(token: string): Promise<void> | undefined {
    const now = this.#now();
    const id = sha256(token).toString("hex");
    const missing = this.#misses.get(id);
    if (missing !== undefined && missing > now) return undefined;
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#used = 0;
    }
    if (this.#used >= this.#perSecond) return undefined;
    this.#used += 1;
    return this.#repo.get(id).then(
      (record) => {
        if (record !== undefined && record.source === "api")
          this.#ring.addApiKey(id, apiKeyOf(record));
        else this.#miss(id);
      },
      () => this.#miss(id),
    );
  }

  #miss(id: string): void {
    this.#misses.delete(id);
    this.#misses.set(id, this.#now() + this.#forgetMs);
    if (this.#misses.size > this.#maxMisses) {
      const oldest = this.#misses.keys().next().value;
      if (oldest !== undefined) this.#misses.delete(oldest);
    }
  }
}
