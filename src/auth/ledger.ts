/**
 * Budgets that cannot be raced: before the upstream call a request holds the most it may
 * cost (`reserve`), which must fit the key's budget beside its recorded spend and every hold
 * still open; after the call the hold becomes the actual cost (`settle`), or is dropped when
 * nothing billable happened (`release`: failure, client gone). So however many requests race
 * for the last cents, recorded spend passes `max_budget` only when an answer cost more than
 * its hold said it could.
 *
 * `Ledger` is the store behind it, by key id (the key's SHA-256, never its name): SQLite in
 * the embedded mode (`spend.ts`); a shared database implements the same interface. Every
 * method is async so that one can.
 */
import { GatewayError } from "../errors/errors.ts";
import type { KeyIdentity } from "./keys.ts";

/** Part of a key's budget held by one request in flight. */
export interface Hold {
  readonly id: string;
  readonly key: string;
  readonly usd: number;
  /**
   * Held nowhere: granted while the database was unreachable, with
   * `allow_requests_on_db_unavailable` (its cost is journaled like any other).
   */
  readonly unbacked?: boolean;
  /**
   * Taken from a budget lease this process holds (journaled-ledger.ts), the lease's id: held
   * locally, inside the lease's hold in the database.
   */
  readonly lease?: string;
}

/** The ledger's database cannot be reached: the key's budget can be neither checked nor held. */
export class LedgerUnavailable extends Error {
  constructor(cause?: unknown) {
    super("the database that keeps budgets is unreachable", { cause });
    this.name = "LedgerUnavailable";
  }
}

export type Reservation =
  | { ok: true; hold: Hold }
  /** It did not fit: what was spent and held when it was refused. */
  | { ok: false; spent: number; held: number };

export interface Ledger {
  /**
   * Holds `usd` of `key`'s budget if recorded spend + open holds + `usd` stays within `limit`;
   * atomic. Throws LedgerUnavailable when its database cannot be reached.
   */
  reserve(key: string, usd: number, limit: number): Promise<Reservation>;
  /** Records `usd` as spent and drops the hold, in one step. */
  settle(hold: Hold, usd: number): Promise<void>;
  /** Drops the hold: nothing billable happened. */
  release(hold: Hold): Promise<void>;
  /** Records spend with no hold (keys without a budget). */
  add(key: string, usd: number): Promise<void>;
  /** Recorded spend (holds not included). */
  spent(key: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * One call's side of the budget: the auth interceptor makes it for the call's key and
 * releases whatever is still held when the call ends; the service reserves before routing
 * and settles once the upstream answered.
 */
export class CallBudget {
  readonly #ledger: Ledger;
  readonly #identity: KeyIdentity;
  #hold: Hold | undefined;

  constructor(ledger: Ledger, identity: KeyIdentity) {
    this.#ledger = ledger;
    this.#identity = identity;
  }

  /** Whether the key has a budget, so its requests must be priced before they run. */
  get limited(): boolean {
    return this.#identity.maxBudget !== undefined;
  }

  /** Holds up to `usd` for this call; the budget 429 when it does not fit. No-op without a budget. */
  async reserve(usd: number): Promise<void> {
    const limit = this.#identity.maxBudget;
    if (limit === undefined) return;
    let r: Reservation;
    try {
      r = await this.#ledger.reserve(this.#identity.id, usd, limit);
    } catch (e) {
      if (!(e instanceof LedgerUnavailable)) throw e;
      throw new GatewayError(
        "budget_unavailable",
        `Key '${this.#identity.name}' has a budget, and the database that keeps budgets is unreachable right now; retry shortly.`,
        { retryAfterSeconds: 1 },
      );
    }
    if (r.ok) {
      this.#hold = r.hold;
      return;
    }
    const name = this.#identity.name;
    const state =
      r.held > 0
        ? `$${r.spent.toFixed(4)} is spent and $${r.held.toFixed(4)} held for requests in flight`
        : `$${r.spent.toFixed(4)} is spent`;
    throw new GatewayError(
      "budget",
      r.spent >= limit
        ? `Key '${name}' has spent its budget: $${r.spent.toFixed(4)} of $${limit}.`
        : `Key '${name}' has not enough budget left for this request, which may cost up to $${usd.toFixed(4)}: ${state} of $${limit}.`,
    );
  }

  /**
   * Records what the call cost. Without a price (possible only without a budget, or from a
   * token-billed answer without usage) a held call is charged what it held.
   * Returns the amount recorded.
   */
  async settle(usd: number | undefined): Promise<number | undefined> {
    const hold = this.#hold;
    this.#hold = undefined;
    if (hold !== undefined) {
      const charged = usd ?? hold.usd;
      await this.#ledger.settle(hold, charged);
      return charged;
    }
    if (usd !== undefined && usd > 0) await this.#ledger.add(this.#identity.id, usd);
    return usd;
  }

  /** Gives back what is still held (the call failed or ended before settling). */
  async release(): Promise<void> {
    const hold = this.#hold;
    this.#hold = undefined;
    if (hold !== undefined) await this.#ledger.release(hold);
  }
}
